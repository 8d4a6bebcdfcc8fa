"""Subcommands of the ``recsim`` CLI, one module each (auto-discovered by :mod:`recsim_env.cli.main`)."""

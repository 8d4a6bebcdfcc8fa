"""The ``recsim`` command: :mod:`recsim_env.cli.main` dispatches to one module per subcommand in
:mod:`recsim_env.cli.commands`."""

"""The `recsim` dispatcher: every subcommand module registers, and every help text renders."""

from __future__ import annotations

import pytest

from recsim_env.cli.main import build_parser, main


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_expected_subcommands_are_registered() -> None:
    assert {"data", "fit", "fidelity", "offline-eval", "train", "evaluate", "benchmark"} <= set(_subcommands())


def test_top_level_help_renders(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in _subcommands():
        assert name in out


@pytest.mark.parametrize("name", _subcommands())
def test_each_subcommand_help_renders(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    # A stray '%' in a help string only fails when argparse formats it, i.e. when a user asks for help.
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert "usage: recsim" in capsys.readouterr().out


@pytest.mark.parametrize("content, match", [
    (b'seeds = 3\nout_dir = "caf\xe9"\n', "is not UTF-8 text"),
    (b"out_dir = 5\n", "out_dir must be a string, got 5"),
    (b'quick = "no"\n', "quick must be true or false, got 'no'"),
])
def test_bad_benchmark_config_is_one_line_error(tmp_path, capsys: pytest.CaptureFixture[str],
                                                content: bytes, match: str) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(content)
    assert main(["benchmark", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("recsim benchmark: error: ") and match in err and "\n" not in err


def test_config_naming_a_directory_is_one_line_error(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark", "--config", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"recsim benchmark: error: config file {tmp_path} is a directory, not a TOML file"

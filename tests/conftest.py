"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hwsim_cli import main

CliResult = tuple[int | str | None, str, str]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``hwsim ARGV...`` in-process; returns (exit code, stdout, stderr), argparse's usage
    errors (which exit from parse_args) included."""

    def run(*argv: str) -> CliResult:
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run

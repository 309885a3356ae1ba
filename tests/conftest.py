"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hwsim.files import BUILD_ENV
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


@pytest.fixture(scope="session", autouse=True)
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every default build folder (Verilator builds, training cache, generated RTL) of the session
    goes to one temporary folder (``$HWSIM_BUILD_DIR``), never into the working directory; tests
    of one session share its builds."""
    path = tmp_path_factory.mktemp("build")
    saved = os.environ.get(BUILD_ENV)
    os.environ[BUILD_ENV] = str(path)
    yield path
    if saved is None:
        os.environ.pop(BUILD_ENV, None)
    else:
        os.environ[BUILD_ENV] = saved

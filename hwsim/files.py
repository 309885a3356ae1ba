"""Where hwsim writes, and how: the build root, atomic writes, and the console for tables.

Generated files and caches go under :func:`build_root` (``$HWSIM_BUILD_DIR``, else ``build/`` of
the working directory), never into the source tree. Every output is written through
:func:`write_atomic`, so a failed run never leaves a half-written file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rich.console import Console

from hwsim.errors import HwsimError

__all__ = ["BUILD_ENV", "PIPED_WIDTH", "build_root", "console", "write_atomic"]

#: Environment variable that moves every default build folder (Verilator builds, training cache,
#: generated RTL).
BUILD_ENV = "HWSIM_BUILD_DIR"
#: Console width when output is piped or redirected, so tables are not squeezed to 80 columns.
PIPED_WIDTH = 180


def build_root() -> Path:
    """``$HWSIM_BUILD_DIR`` if set, else ``build`` (relative to the working directory)."""
    return Path(os.environ.get(BUILD_ENV) or "build")


def console(*, stderr: bool = False) -> Console:
    """A rich console; :data:`PIPED_WIDTH` columns wide when not on a terminal."""
    out = Console(stderr=stderr)
    return out if out.is_terminal else Console(stderr=stderr, width=PIPED_WIDTH)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, text: str | bytes) -> None:
    """Write ``text`` (str, or bytes for binary files) to ``path`` via a temporary file and rename,
    with the usual permissions (not mkstemp's 0600); raise HwsimError on failure."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise HwsimError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_umask())
        with (os.fdopen(fd, "wb") if isinstance(text, bytes) else os.fdopen(fd, "w", newline="")) as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise HwsimError(f"cannot write {str(path)!r}: {exc.strerror}") from None

"""Warnings of a run, on stderr: each once, so a table on stdout stays clean for pipes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from rich.markup import escape

from hwsim import files

__all__ = ["warn"]


def warn(warnings: Iterable[str]) -> None:
    """Print every distinct warning once on stderr (with ``(xN)`` when it came N > 1 times)."""
    console = files.console(stderr=True)
    for text, count in Counter(warnings).items():
        console.print(f"[yellow]warning:[/yellow] {escape(text)}{f' (x{count})' if count > 1 else ''}",
                      highlight=False, soft_wrap=True)

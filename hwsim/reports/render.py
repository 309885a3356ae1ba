"""One report document, two renderings: Markdown (figures as PNG files beside it) and a
self-contained HTML page (figures embedded as base64 PNG, inline CSS, no external reference).

A document is a list of blocks built with :func:`heading`, :func:`para`, :func:`table`,
:func:`bullets` and :func:`figure`; both renderers walk the same list, so the two files always
say the same thing.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hwsim.errors import HwsimError
from hwsim.files import write_atomic

__all__ = ["Block", "bullets", "check_out_dir", "figure", "heading", "para", "table", "to_html",
           "to_markdown", "write_bundle"]


@dataclass(frozen=True)
class Block:
    """One block: ``kind`` is heading/para/table/bullets/figure; ``png`` only for figures."""

    kind: str
    text: str = ""
    level: int = 1
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    items: tuple[str, ...] = ()
    file: str = ""
    png: bytes = b""


def heading(text: str, level: int = 1) -> Block:
    return Block("heading", text=text, level=level)


def para(text: str) -> Block:
    return Block("para", text=text)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> Block:
    return Block("table", header=tuple(header), rows=tuple(tuple(map(str, r)) for r in rows))


def bullets(items: Sequence[str]) -> Block:
    return Block("bullets", items=tuple(items))


def figure(file: str, png: bytes, caption: str) -> Block:
    """A PNG written next to the report as ``file`` and embedded in the HTML."""
    return Block("figure", text=caption, file=file, png=png)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind == "heading":
            out.append(f"{'#' * b.level} {b.text}")
        elif b.kind == "para":
            out.append(b.text)
        elif b.kind == "table":
            out.append("\n".join(["| " + " | ".join(map(_md_cell, b.header)) + " |",
                                  "|" + "|".join("---" for _ in b.header) + "|",
                                  *("| " + " | ".join(map(_md_cell, r)) + " |" for r in b.rows)]))
        elif b.kind == "bullets":
            out.append("\n".join(f"- {item}" for item in b.items))
        else:
            out.append(f"![{b.text}]({b.file})\n\n*{b.text}*")
    return "\n\n".join(out) + "\n"


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}table{border-collapse:collapse;margin:1em 0;
font-size:0.9em}th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:right}th{background:#f0f0f0}
td:first-child,th:first-child{text-align:left}figure{margin:1.5em 0}img{max-width:100%}
figcaption{font-style:italic;color:#555}code{background:#f4f4f4;padding:0 0.2em}"""


def _inline(text: str) -> str:
    """Escape, then turn Markdown `code` spans into <code> and **bold** into <strong>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else _bold(p) for i, p in enumerate(parts))


def _bold(text: str) -> str:
    parts = text.split("**")
    if len(parts) % 2 == 0:  # an unpaired ** stays literal
        return text
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def to_html(title: str, blocks: Sequence[Block]) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>"]
    for b in blocks:
        if b.kind == "heading":
            out.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
        elif b.kind == "para":
            out.append(f"<p>{_inline(b.text)}</p>")
        elif b.kind == "table":
            out.append("<table>")
            out.append("<tr>" + "".join(f"<th>{_inline(h)}</th>" for h in b.header) + "</tr>")
            out.extend("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in b.rows)
            out.append("</table>")
        elif b.kind == "bullets":
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>")
        else:
            data = base64.b64encode(b.png).decode("ascii")
            out.append(f'<figure><img alt="{html.escape(b.text)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{_inline(b.text)}</figcaption></figure>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def write_bundle(out_dir: Path, title: str, blocks: Sequence[Block], results: dict,
                 rows: Sequence[dict]) -> list[Path]:
    """Write report.md, report.html, every figure's PNG, results.json and results.csv into
    ``out_dir`` (created if needed), each atomically; return the paths written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HwsimError(f"cannot create output folder {str(out_dir)!r}: {exc.strerror}") from None
    files: dict[str, str | bytes] = {b.file: b.png for b in blocks if b.kind == "figure"}
    files["report.md"] = to_markdown(blocks)
    files["report.html"] = to_html(title, blocks)
    files["results.json"] = json.dumps(results, indent=2) + "\n"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    files["results.csv"] = buf.getvalue()
    for name, content in files.items():
        write_atomic(out_dir / name, content)
    return [out_dir / name for name in files]


def check_out_dir(out_dir: Path) -> None:
    """Fail early (before any long work) if ``out_dir`` cannot be created or written."""
    if out_dir.exists() and not out_dir.is_dir():
        raise HwsimError(f"output {str(out_dir)!r} exists and is not a folder; give a folder with -o")
    ancestor = out_dir if out_dir.exists() else next(p for p in out_dir.absolute().parents if p.exists())
    if not os.access(ancestor, os.W_OK):
        raise HwsimError(f"cannot write into {str(ancestor)!r}; give a writable folder with -o")

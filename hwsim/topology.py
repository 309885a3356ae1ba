"""Read a SCALE-Sim topology CSV so SCALE-Sim users can bring their workloads unchanged.

Both formats of SCALE-Sim v2 ``topologies/``:

* **conv** (the default): one convolution per row, ``Layer name, IFMAP Height, IFMAP Width,
  Filter Height, Filter Width, Channels, Num Filter, Strides[, Stride width]``. The IFMAP size
  already includes any padding, so padding is 0, and the output size is SCALE-Sim's
  (``topology_utils``): ``ceil((ifmap - filter + stride) / stride)``, which rounds a partial last
  window *up* (a 230-wide IFMAP with a 7-wide filter at stride 2 gives 113 outputs, not 112). A
  row whose name contains ``DP`` is depthwise, as in SCALE-Sim: each channel is its own group of
  ``Num Filter`` filters.
* **GEMM**, a header ``Layer, M, N, K``: each row is an ``M x K`` by ``K x N`` product, read as
  a linear layer of ``K`` inputs and ``N`` outputs over ``M`` rows (SCALE-Sim's ``mnk`` mode
  makes the same GEMM of it).

The header is read as SCALE-Sim reads it, by position, so its wording does not matter (``IFMAP
Width, IFMAP Width``, any case, a UTF-8 byte-order mark, tabs instead of commas); only ``M, N,
K`` in columns 2-4 selects the GEMM format. Empty cells at the end of a row (the customary
trailing comma) and blank rows are skipped. Cells past the sizes (SCALE-Sim's ``Eh, Ew``
columns, ``#dw`` comments, a ``batch size`` column) are not layer fields: the workload's
warnings name them when a row fills them, so nothing is dropped silently.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from contract import operand_bits
from hwsim.errors import HwsimError
from hwsim.workload import Layer, Workload

__all__ = ["read_topology"]

#: The conv format's sizes after the name, as SCALE-Sim orders them (stride width is optional).
_CONV_FIELDS = ("IFMAP height", "IFMAP width", "filter height", "filter width", "channels",
                "num filter", "stride", "stride width")
_GEMM_FIELDS = ("M", "N", "K")


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise HwsimError(f"topology file {str(path)!r} not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HwsimError(f"cannot read topology file {str(path)!r}: {exc}") from None
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    delimiter = "," if "," in first or "\t" not in first else "\t"
    rows = []
    for number, cells in enumerate(csv.reader(lines, delimiter=delimiter), start=1):
        cells = [cell.strip() for cell in cells]
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            rows.append((number, cells))
    return rows


def _is_number(cell: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", cell) is not None


def read_topology(path: str | Path, *, pe: str = "mac", bits: int = 8) -> Workload:
    """Parse a SCALE-Sim topology file into layers costed on datapath ``pe`` at ``bits``.

    Raises :class:`HwsimError` naming the file, line and field of anything it cannot read.
    """
    path = Path(path)
    rows = _rows(path)
    if not rows:
        raise HwsimError(f"topology file {str(path)!r} is empty")
    (line, header), body = rows[0], rows[1:]
    if len(header) > 1 and all(_is_number(cell) for cell in header[1:]):
        raise HwsimError(f"{path}:{line}: the first row must be a header (SCALE-Sim skips it), "
                         f"but it is a layer; add a header row")
    gemm = [cell.lower() for cell in header[1:4]] == ["m", "n", "k"]
    fields = _GEMM_FIELDS if gemm else _CONV_FIELDS
    ninth = header[8] if len(header) > 8 else ""
    if not gemm and ninth and "stride" not in ninth.lower():  # e.g. "batch size": not a stride
        fields = _CONV_FIELDS[:-1]
    layers, ignored = [], set()
    for number, cells in body:
        values = _values(path, number, cells, fields, required=len(fields) - (0 if gemm else 1))
        used = 1 + len(values)
        ignored.update(header[col] if col < len(header) and header[col] else f"column {col + 1}"
                       for col in range(used, len(cells)) if cells[col])
        layers.append((_gemm if gemm else _conv)(path, number, cells[0], values, pe, bits))
    if not layers:
        raise HwsimError(f"topology file {str(path)!r} has a header but no layers")
    warnings = ((f"{path.name}: cells past the layer sizes are ignored ({', '.join(sorted(ignored))})",)
                if ignored else ())
    first = layers[0]
    return Workload(name=path.stem, input_shape=(1, first.in_ch, first.in_h, first.in_w),
                    layers=tuple(layers), warnings=warnings)


def _values(path: Path, line: int, cells: list[str], fields: tuple[str, ...], required: int) -> list[int]:
    """The integer sizes after the name (optional trailing ones may be empty)."""
    name = cells[0]
    if not name:
        raise HwsimError(f"{path}:{line}: a layer row needs a name in its first column")
    given = cells[1: 1 + len(fields)]
    if len([cell for cell in given if cell]) < required:
        raise HwsimError(f"{path}:{line}: layer {name!r} needs {required} sizes "
                         f"({', '.join(fields[:required])}), got {len(given)}")
    values = []
    for field, cell in zip(fields, given):
        if len(values) >= required and not _is_number(cell):  # an optional size left out
            break
        if not cell:
            raise HwsimError(f"{path}:{line}: layer {name!r} has no {field}")
        if not _is_number(cell):
            raise HwsimError(f"{path}:{line}: layer {name!r} has a non-integer {field}: {cell!r}")
        if int(cell) <= 0:
            raise HwsimError(f"{path}:{line}: layer {name!r} {field} must be positive, not {cell}")
        values.append(int(cell))
    return values


def _conv(path: Path, line: int, name: str, values: list[int], pe: str, bits: int) -> Layer:
    ih, iw, fh, fw, ch, nf, stride_h, *rest = values
    stride_w = rest[0] if rest else stride_h
    if fh > ih or fw > iw:
        raise HwsimError(f"{path}:{line}: layer {name!r} filter {fh}x{fw} is larger than its IFMAP {ih}x{iw}")
    # SCALE-Sim's own output size, ceil((ifmap - filter + stride) / stride): a partial last
    # window counts (tests/test_scalesim_oracle.py), unlike contract.conv_out_size.
    oh, ow = -(-(ih - fh + stride_h) // stride_h), -(-(iw - fw + stride_w) // stride_w)
    act_bits, weight_bits = operand_bits(pe, bits)
    groups = ch if "DP" in name else 1
    return Layer(name=name, op="conv", in_ch=ch, in_h=ih, in_w=iw, out_ch=nf * groups, out_h=oh,
                 out_w=ow, kernel=(fh, fw), stride=(stride_h, stride_w), groups=groups, pe=pe,
                 act_bits=act_bits, weight_bits=weight_bits, params=fh * fw * ch * nf,
                 detail="scalesim depthwise" if groups > 1 else "scalesim")


def _gemm(path: Path, line: int, name: str, values: list[int], pe: str, bits: int) -> Layer:
    m, n, k = values
    act_bits, weight_bits = operand_bits(pe, bits)
    return Layer(name=name, op="linear", in_ch=k, in_h=1, in_w=1, out_ch=n, out_h=1, out_w=1,
                 batch=m, pe=pe, act_bits=act_bits, weight_bits=weight_bits, params=k * n,
                 detail="scalesim gemm")

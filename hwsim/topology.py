"""Read a SCALE-Sim topology CSV so SCALE-Sim users can bring their workloads unchanged.

The format (SCALE-Sim v1/v2 ``topologies/*.csv``) has a header row and one convolution per row:
``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
Strides,`` (a trailing comma is common). The IFMAP size already includes any padding, so padding
is 0, and the output size is read as SCALE-Sim v2 reads it (``topology_utils``):
``ceil((ifmap - filter + stride) / stride)``, which rounds a partial last window *up* (a 230-wide
IFMAP with a 7-wide filter at stride 2 gives 113 outputs, not the 112 a framework would).
A row whose name contains ``DP`` is depthwise, as in SCALE-Sim: each channel is its own group of
``Num Filter`` filters. A fully connected layer is written as a 1x1 IFMAP with a 1x1 filter.
"""

from __future__ import annotations

import csv
from pathlib import Path

from contract import operand_bits
from hwsim.errors import HwsimError
from hwsim.workload import Layer, Workload

_COLUMNS = ("layer name", "ifmap height", "ifmap width", "filter height", "filter width",
            "channels", "num filter", "strides")


def read_topology(path: str | Path, *, pe: str = "mac", bits: int = 8) -> Workload:
    """Parse a SCALE-Sim topology file into conv layers costed on datapath ``pe`` at ``bits``."""
    path = Path(path)
    try:
        rows = list(csv.reader(path.read_text().splitlines()))
    except FileNotFoundError:
        raise HwsimError(f"topology file {str(path)!r} not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HwsimError(f"cannot read topology file {str(path)!r}: {exc}") from None
    rows = [[cell.strip() for cell in row if cell.strip()] for row in rows]
    rows = [row for row in rows if row]
    if not rows:
        raise HwsimError(f"topology file {str(path)!r} is empty")
    header = [cell.lower() for cell in rows[0]]
    if header[: len(_COLUMNS)] != list(_COLUMNS):
        raise HwsimError(f"{path}: header must start with the SCALE-Sim columns "
                         f"{', '.join(_COLUMNS)}; got {', '.join(rows[0])}")
    layers = [_layer(path, number, row, pe, bits) for number, row in enumerate(rows[1:], start=2)]
    if not layers:
        raise HwsimError(f"topology file {str(path)!r} has a header but no layers")
    return Workload(name=path.stem, input_shape=(1, layers[0].in_ch, layers[0].in_h, layers[0].in_w),
                    layers=tuple(layers))


def _layer(path: Path, line: int, row: list[str], pe: str, bits: int) -> Layer:
    if len(row) < len(_COLUMNS):
        raise HwsimError(f"{path}:{line}: expected {len(_COLUMNS)} columns, got {len(row)}")
    name = row[0]
    try:
        ih, iw, fh, fw, ch, nf, stride = (int(v) for v in row[1:8])
    except ValueError:
        raise HwsimError(f"{path}:{line}: layer {name!r} has a non-integer size: {', '.join(row[1:8])}") from None
    if min(ih, iw, fh, fw, ch, nf, stride) <= 0:
        raise HwsimError(f"{path}:{line}: layer {name!r} sizes must be positive")
    if fh > ih or fw > iw:
        raise HwsimError(f"{path}:{line}: layer {name!r} filter {fh}x{fw} is larger than its IFMAP {ih}x{iw}")
    # SCALE-Sim's own output size, ceil((ifmap - filter + stride) / stride): a partial last
    # window counts (tests/test_scalesim_oracle.py), unlike contract.conv_out_size.
    oh, ow = -(-(ih - fh + stride) // stride), -(-(iw - fw + stride) // stride)
    act_bits, weight_bits = operand_bits(pe, bits)
    groups = ch if "DP" in name else 1
    return Layer(name=name, op="conv", in_ch=ch, in_h=ih, in_w=iw, out_ch=nf * groups, out_h=oh,
                 out_w=ow, kernel=(fh, fw), stride=(stride, stride), groups=groups, pe=pe,
                 act_bits=act_bits, weight_bits=weight_bits,
                 params=fh * fw * ch * nf, detail="scalesim depthwise" if groups > 1 else "scalesim")

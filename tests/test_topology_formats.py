"""SCALE-Sim topology files in the wordings SCALE-Sim v2 ships, read by hwsim as SCALE-Sim's own
parser (``scalesim.topology_utils``, the oracle) reads them: the same GEMM (M, K, N) per layer.

The variants are those of SCALE-Sim v2's ``topologies/`` folder (headers copied in wording only;
the rows are ours): a trailing comma or none, a blank line after the header, ``Layer,`` with the
duplicated ``IFMAP Width`` header, lower case with a UTF-8 byte-order mark, a ``batch size``
column, Windows line ends, a stride-width column, depthwise ``DP`` rows and the GEMM ``Layer, M,
N, K`` format. ``benchmarks/scalesim_topologies.py`` runs the same comparison
on every file of a SCALE-Sim checkout.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from scalesim.topology_utils import topologies

from hwsim.topology import read_topology

STD = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides"
ROWS = ["Conv1, 224, 224, 7, 7, 3, 64, 2", "CB2a_1, 56, 56, 1, 1, 64, 64, 1",
        "Conv_DP3, 28, 28, 3, 3, 32, 1, 2", "FC, 1, 1, 1, 1, 2048, 1000, 1"]

VARIANTS: dict[str, tuple[str, bool]] = {
    "trailing-comma": (STD + ",\n" + "".join(r + ",\n" for r in ROWS), False),
    "blank-line": (STD + ",\n\n" + "".join(r + ",\n" for r in ROWS), False),
    "no-trailing-comma-9": (STD + ", Stride width\n" + "".join(r + f", {r.split(',')[-1].strip()}\n"
                                                               for r in ROWS), False),
    "duplicated-width": ("Layer, IFMAP Width, IFMAP Width, Filter Height, Filter Width, Channels, "
                         "Num Filter, Strides,\n" + "".join(r + ",\n" for r in ROWS), False),
    "bom-lowercase": ("\ufeffLayer name,Ifmap height,ifmap width,filter height,filter width,channels,"
                      "num filters,strides,\n" + "".join(r.replace(" ", "") + ",\n" for r in ROWS), False),
    "batch-size": ("\ufeffLayer name,Ifmap height,ifmap width,filter height,filter width,channels,"
                   "num filters,strides,batch size,\n" + "".join(r + ",\n" for r in ROWS), False),
    "crlf": ((STD + ",\n" + "".join(r + ",\n" for r in ROWS)).replace("\n", "\r\n"), False),
    "gemm": ("Layer,M,N,K,\n1,256,128,2048,\n2,128,64,2048,\nfc,1,1000,512,\n", True),
    "gemm-spaced": ("Layer Name, M, N, K,\nqkv, 64, 192, 64,\n", True),
}


def scalesim_gemms(path: Path, gemm: bool) -> list[tuple[int, int, int]]:
    """(M, K, N) of every layer as SCALE-Sim v2 reads ``path`` (a DP row is one layer per channel)."""
    topo = topologies()
    with contextlib.redirect_stdout(io.StringIO()):
        topo.load_arrays(str(path), mnk_inputs=gemm)
        topo.topo_calc_hyperparams()
    return [(oh * ow, window, arr[6])
            for arr, (oh, ow, _, window) in zip(topo.topo_arrays, topo.layers_calculated_hyperparams)]


@pytest.mark.parametrize("name", VARIANTS)
def test_reads_as_scalesim_does(tmp_path: Path, name: str) -> None:
    text, gemm = VARIANTS[name]
    path = tmp_path / f"{name}.csv"
    path.write_bytes(text.encode())
    want = scalesim_gemms(path, gemm)
    got = [(m, k, n) for layer in read_topology(path).layers for _ in range(layer.gemm[0])
           for _, m, k, n in [layer.gemm]]
    assert want and got == want


def test_beyond_scalesim(tmp_path: Path) -> None:
    """What SCALE-Sim's parser fails on (an all-empty row, empty cells before its Eh, Ew, e2
    columns, tabs) hwsim reads, naming the ignored columns."""
    path = tmp_path / "eh.csv"
    path.write_text(STD + ",,,Eh,Ew,e2\n,,,,,,,,,,,,\n" + "".join(r + ",,,5,5,25\n" for r in ROWS[:2]))
    wl = read_topology(path)
    # Conv1: ceil((224 - 7 + 2) / 2) = 110 outputs a side (the file's own Eh, Ew say 110)
    assert [layer.gemm for layer in wl.layers] == [(1, 110 * 110, 147, 64), (1, 56 * 56, 64, 64)]
    assert wl.warnings == ("eh.csv: cells past the layer sizes are ignored (Eh, Ew, e2)",)
    tabs = tmp_path / "tab.csv"
    tabs.write_text(STD.replace(", ", "\t") + "\n" + ROWS[1].replace(", ", "\t") + "\n")
    assert [layer.gemm for layer in read_topology(tabs).layers] == [(1, 56 * 56, 64, 64)]

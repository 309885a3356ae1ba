"""SCALE-Sim topology CSV import."""

import pytest

from hwsim.errors import HwsimError
from hwsim.topology import read_topology

HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"


def test_read_topology(tmp_path):
    path = tmp_path / "net.csv"
    path.write_text(HEADER + "Conv1, 230, 230, 7, 7, 3, 64, 2,\nFC, 1, 1, 1, 1, 512, 10, 1,\n")
    wl = read_topology(path, pe="adder", bits=8)
    conv, fc = wl.layers
    # SCALE-Sim rounds a partial window up: ceil((230 - 7 + 2) / 2) = 113; MACs = 113*113 * 7*7*3 * 64
    assert (conv.out_h, conv.out_w, conv.padding) == (113, 113, (0, 0))
    assert conv.macs == 113 * 113 * 147 * 64
    assert fc.macs == 512 * 10
    assert conv.pe == "adder" and wl.name == "net" and wl.input_shape == (1, 3, 230, 230)


def test_read_topology_depthwise_rows(tmp_path):
    path = tmp_path / "dw.csv"
    path.write_text(HEADER + "Conv_DP1, 10, 10, 3, 3, 4, 1,  1,\n")
    (layer,) = read_topology(path).layers
    # 4 channels, each its own 1-filter group: GEMM per group 8*8 x 9 x 1
    assert (layer.groups, layer.out_ch, layer.gemm) == (4, 4, (4, 64, 9, 1))


def test_read_topology_xnor_is_one_bit(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text(HEADER + "c, 8, 8, 3, 3, 64, 64, 1,\n")
    assert read_topology(path, pe="xnor").layers[0].act_bits == 1


@pytest.mark.parametrize("body, message", [
    ("", r"topology file '.*e\.csv' is empty"),
    ("c, 8, 8, 3, 3, 1, 1, 1,\n", r".*e\.csv:1: the first row must be a header \(SCALE-Sim skips it\), "
                                   r"but it is a layer; add a header row"),
    (HEADER, r"topology file '.*e\.csv' has a header but no layers"),
    (HEADER + "c, 8, 8, 3\n", r".*e\.csv:2: layer 'c' needs 7 sizes \(IFMAP height, IFMAP width, filter "
                              r"height, filter width, channels, num filter, stride\), got 3"),
    (HEADER + "c, 8, x, 3, 3, 1, 1, 1\n", r".*e\.csv:2: layer 'c' has a non-integer IFMAP width: 'x'"),
    (HEADER + "c, 8, , 3, 3, 1, 1, 1, 1\n", r".*e\.csv:2: layer 'c' has no IFMAP width"),
    (HEADER + "c, 8, 8, 3, 3, 0, 1, 1\n", r".*e\.csv:2: layer 'c' channels must be positive, not 0"),
    (HEADER + "c, 2, 2, 3, 3, 1, 1, 1\n", r".*e\.csv:2: layer 'c' filter 3x3 is larger than its IFMAP 2x2"),
    (HEADER + ", 8, 8, 3, 3, 1, 1, 1\n", r".*e\.csv:2: a layer row needs a name in its first column"),
    ("Layer, M, N, K,\ng, 4, 5\n", r".*e\.csv:2: layer 'g' needs 3 sizes \(M, N, K\), got 2"),
])
def test_read_topology_wrong(tmp_path, body, message):
    path = tmp_path / "e.csv"
    path.write_text(body)
    with pytest.raises(HwsimError, match="^" + message + "$"):
        read_topology(path)


def test_stride_width_and_gemm_by_hand(tmp_path):
    """Stride height 2, width 1 on a 9x9 IFMAP with a 3x3 filter: ceil((9-3+2)/2) = 4 rows,
    ceil((9-3+1)/1) = 7 columns. A GEMM row M=6, N=5, K=4 is a linear layer over 6 rows."""
    conv = tmp_path / "s.csv"
    conv.write_text(HEADER.rstrip(",\n") + ", Stride width,\nc, 9, 9, 3, 3, 2, 4, 2, 1,\n")
    (layer,) = read_topology(conv).layers
    assert (layer.out_h, layer.out_w, layer.stride) == (4, 7, (2, 1))
    assert layer.macs == 4 * 7 * 3 * 3 * 2 * 4
    gemm = tmp_path / "g.csv"
    gemm.write_text("Layer,M,N,K,\nfc,6,5,4,\n")
    (fc,) = read_topology(gemm, pe="shift", bits=4).layers
    assert (fc.op, fc.gemm, fc.macs, fc.params, fc.act_bits, fc.weight_bits) == (
        "linear", (1, 6, 4, 5), 6 * 4 * 5, 20, 4, 5)


def test_cells_past_the_sizes_are_named(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(HEADER.rstrip("\n") + ",,Eh,Ew\nc1, 8, 8, 3, 3, 1, 1, 1,,,6,6\nc2, 8, 8, 1, 1, 1, 1, 1, #dw\n")
    wl = read_topology(path)
    assert len(wl.layers) == 2
    assert wl.warnings == ("x.csv: cells past the layer sizes are ignored (Eh, Ew, column 9)",)


def test_read_topology_missing():
    with pytest.raises(HwsimError, match=r"^topology file 'none\.csv' not found; check the path$"):
        read_topology("none.csv")

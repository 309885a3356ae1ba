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
    ("Name, H\n", r".*e\.csv: header must start with the SCALE-Sim columns layer name, .*; got Name, H"),
    (HEADER, r"topology file '.*e\.csv' has a header but no layers"),
    (HEADER + "c, 8, 8, 3\n", r".*e\.csv:2: expected 8 columns, got 4"),
    (HEADER + "c, 8, x, 3, 3, 1, 1, 1\n", r".*e\.csv:2: layer 'c' has a non-integer size: 8, x, 3, 3, 1, 1, 1"),
    (HEADER + "c, 8, 8, 3, 3, 0, 1, 1\n", r".*e\.csv:2: layer 'c' sizes must be positive"),
    (HEADER + "c, 2, 2, 3, 3, 1, 1, 1\n", r".*e\.csv:2: layer 'c' filter 3x3 is larger than its IFMAP 2x2"),
])
def test_read_topology_wrong(tmp_path, body, message):
    path = tmp_path / "e.csv"
    path.write_text(body)
    with pytest.raises(HwsimError, match="^" + message + "$"):
        read_topology(path)


def test_read_topology_missing():
    with pytest.raises(HwsimError, match=r"^topology file 'none\.csv' not found; check the path$"):
        read_topology("none.csv")

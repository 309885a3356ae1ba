"""``hwsim cosim --layer`` descriptions: parsed into LayerSpec, or one-line errors."""

from __future__ import annotations

import re

import pytest

from hwsim.errors import HwsimError
from sim.layers import LayerSpec
from sim.spec import parse_layer


@pytest.mark.parametrize("text, spec", [
    ("conv k=3 cin=16 cout=16 h=16 w=16 stride=1 pad=1",
     LayerSpec("conv", 16, 16, h=16, w=16, kernel=3, stride=1, pad=1)),
    ("conv cin=8 k=1 cout=4 h=5", LayerSpec("conv", 8, 4, h=5, w=5, kernel=1)),
    ("conv k=3 cin=12 cout=12 h=7 w=9 stride=2 pad=0 groups=12",
     LayerSpec("conv", 12, 12, h=7, w=9, kernel=3, stride=2, groups=12)),
    ("  linear   cin=64 cout=10 ", LayerSpec("linear", 64, 10)),
])
def test_parse_layer(text, spec):
    assert parse_layer(text) == spec


@pytest.mark.parametrize("text, message", [
    ("", "layer '': unknown operation ''; write e.g. \"conv k=3 cin=16 cout=16 h=16 w=16 stride=1 pad=1\" "
         "or \"linear cin=64 cout=10\""),
    ("pool k=2", "layer 'pool k=2': unknown operation 'pool'; write e.g. \"conv k=3 cin=16 cout=16 h=16 w=16 "
                 "stride=1 pad=1\" or \"linear cin=64 cout=10\""),
    ("conv k=3 cin=4 cout=4 h=4 dil=2",
     "layer 'conv k=3 cin=4 cout=4 h=4 dil=2': 'dil=2' is not one of conv's k=N, cin=N, cout=N, h=N, w=N, "
     "stride=N, pad=N, groups=N"),
    ("linear cin=4 cout=4 k=3", "layer 'linear cin=4 cout=4 k=3': 'k=3' is not one of linear's cin=N, cout=N"),
    ("conv k=3 k=1 cin=4 cout=4 h=4", "layer 'conv k=3 k=1 cin=4 cout=4 h=4': k is given twice"),
    ("conv k=3 cin=4 cout=0 h=4", "layer 'conv k=3 cin=4 cout=0 h=4': cout must be a positive integer, not '0'"),
    ("conv k=3 cin=4 cout=4 h=4 pad=-1",
     "layer 'conv k=3 cin=4 cout=4 h=4 pad=-1': pad must be a non-negative integer, not '-1'"),
    ("conv k=3 cin=4 cout=4", "layer 'conv k=3 cin=4 cout=4': missing h=N"),
    ("linear cout=4", "layer 'linear cout=4': missing cin=N"),
    ("conv k=3 cin=6 cout=4 h=4 groups=4",
     "layer 'conv k=3 cin=6 cout=4 h=4 groups=4': `cin` of 6 is not divisible by groups=4"),
])
def test_parse_layer_wrong(text, message):
    with pytest.raises(HwsimError, match=f"^{re.escape(message)}$"):
        parse_layer(text)

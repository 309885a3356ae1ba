"""Any valid accelerator gives one consistent generated top, or a ConfigError naming its field.

Property test over random accelerators (hypothesis): when :func:`hwsim.rtl_plan.top_geometry`
accepts one, the top built from it (constructed, not elaborated) has stream ports exactly as wide
as the geometry's words, accumulators exactly :func:`contract.acc_bits` wide (or the configured
``acc_bits``), and buffers that fit the configured SRAM capacities; when it refuses, the message
names a config field in backquotes.
"""

from __future__ import annotations

import re

from amaranth.hdl import Shape
from hypothesis import given, settings
from hypothesis import strategies as st

import contract
from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, RtlConfig
from hwsim.errors import ConfigError
from hwsim.rtl_plan import top_geometry
from rtl.top import LayerAccelerator

FIELDS = {"array.dataflow", "bits", "array.lanes", "max_shift", "memory.ifmap_sram_kib",
          "memory.weight_sram_kib", "memory.ofmap_sram_kib", "acc_bits"}


@st.composite
def accelerators(draw: st.DrawFn) -> Accelerator:
    pe = draw(st.sampled_from(contract.PE_KINDS))
    bits = 1 if pe == "xnor" else draw(st.integers(2, 20))
    kib = st.sampled_from([0.001, 0.0625, 0.25, 1, 2, 8, 64])
    return Accelerator(
        pe=pe, bits=bits, acc_bits=draw(st.sampled_from([0, 0, 12, 24, 40])),
        max_shift=draw(st.integers(0, 18)),
        array=ArrayConfig(rows=draw(st.integers(1, 8)), cols=draw(st.integers(1, 8)),
                          lanes=draw(st.sampled_from([8, 16, 24, 64])),
                          dataflow=draw(st.sampled_from(["os", "os", "os", "ws"]))),
        memory=MemoryConfig(ifmap_sram_kib=draw(kib), weight_sram_kib=draw(kib), ofmap_sram_kib=draw(kib)),
        rtl=RtlConfig(max_steps=draw(st.sampled_from([0, 0, 9, 64, 500])),
                      bias_bits=draw(st.sampled_from([16, 32])), dim_bits=draw(st.sampled_from([8, 12]))))


def width(shape: object) -> int:
    return Shape.cast(shape).width


@settings(max_examples=150, deadline=None)
@given(accelerators())
def test_any_config_gives_a_consistent_top_or_names_the_field(acc: Accelerator) -> None:
    try:
        geo = top_geometry(acc)
    except ConfigError as exc:
        named = set(re.findall(r"`([\w.]+)`", str(exc)))
        assert named & FIELDS, str(exc)
        return
    top = LayerAccelerator(geo)
    ports = {name: width(top.signature.members[name].signature.members["payload"].shape)
             for name in ("i_acts", "i_weights", "i_params", "o_results")}
    # an activation beat: the most words a 64-bit bus word holds (a power of two), at most the buffer
    beat = min(max(1, 64 // geo.word_bits["act_words"]), geo.act_words + geo.act_beat - 1)
    assert geo.act_beat == 1 << (beat.bit_length() - 1) and geo.act_words % geo.act_beat == 0
    assert ports == {"i_acts": geo.act_beat * geo.word_bits["act_words"], "i_weights": geo.word_bits["weight_words"],
                     "i_params": geo.word_bits["param_words"], "o_results": geo.word_bits["out_words"]}
    lanes = acc.array.lanes if acc.pe == "xnor" else 1
    need = contract.acc_bits(acc.pe, geo.max_steps * lanes, acc.bits, max_shift=acc.max_shift, lanes=lanes)
    assert top.acc_shape.width == geo.acc_bits == (acc.acc_bits or need) >= need
    assert geo.weight_words >= geo.max_steps and geo.out_words >= acc.array.rows
    # the buffers hold no more than the SRAM configured for them (weights and parameters share one)
    bits = geo.word_bits
    assert geo.act_words * bits["act_words"] <= acc.memory.ifmap_sram_kib * 8192
    assert (geo.weight_words * bits["weight_words"] + geo.param_words * bits["param_words"]
            <= acc.memory.weight_sram_kib * 8192)
    assert geo.out_words * bits["out_words"] <= acc.memory.ofmap_sram_kib * 8192

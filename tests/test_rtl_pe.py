# amaranth: UnusedElaboratable=no
"""PE components on Amaranth's simulator against models.intref, one accumulation at a time.

The golden model is :func:`models.intref.int_forward` on a fully connected layer whose output
stage is the identity (M = 2, S = 1, B = 0, 62-bit output: ``(2 * acc + 1) >> 1 == acc``), so
every check is against the one written definition of each PE kind's arithmetic.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from amaranth.hdl import Value, signed, unsigned
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import PIPELINE_CYCLES
from models.intref import QLayer, int_forward
from rtl.pe import (PE_CLASSES, PORT_TO_ACC_CYCLES, AdderPE, MacPE, PESpec, ProcessingElement,
                    ShiftPE, XnorPE, encode_shift_weight)

#: Amaranth-simulator tier (see pyproject.toml markers); tool tests are also marked rtl.
pytestmark = pytest.mark.amaranth

MAX_SHIFT = 3


def reference_acc(kind: str, x: np.ndarray, w: np.ndarray, *, bits: int = 8, p: np.ndarray | None = None,
                  max_shift: int = MAX_SHIFT) -> np.ndarray:
    """The accumulators (N, O) of ``x`` (N, K) against ``w`` (O, K) by models.intref.

    mac/adder: integer weights; shift: ``w`` is the sign s and ``p`` the shift; xnor: bits, and
    the result is intref's ``dot = K - 2 * popcount(x XOR w)``.
    """
    out, k = w.shape
    extra = {} if kind == "xnor" else {
        "multiplier": np.full(out, 2), "rshift": np.ones(out, dtype=np.int64),
        "bias": np.zeros(out, dtype=np.int64)}
    if kind == "shift":
        extra["shift"] = np.asarray(p)
    q = QLayer(pe=kind, conv=False, in_channels=k, out_channels=out, kernel_size=(1, 1),
               stride=(1, 1), padding=(0, 0), groups=1, bits_in=1 if kind == "xnor" else bits,
               bits_w=bits, bits_out=62, acc_bits=0, bias_bits=0, max_shift=max_shift, relu=False,
               binary_out=False, scale_in=1.0, weight=np.asarray(w), out_scale=np.ones(out),
               out_offset=np.zeros(out), **extra)
    return int_forward(q, np.asarray(x, dtype=np.int64))


def pack_words(bits: np.ndarray, lanes: int, pad: int) -> list[int]:
    """K bits -> ceil(K / lanes) words, lane i of word j = bit j * lanes + i, padding lanes = pad."""
    words = []
    for start in range(0, len(bits), lanes):
        chunk = list(bits[start:start + lanes]) + [pad] * (lanes - len(bits[start:start + lanes]))
        words.append(sum(int(b) << i for i, b in enumerate(chunk)))
    return words


def operand_words(pe: ProcessingElement, x: np.ndarray, w: np.ndarray,
                  p: np.ndarray | None = None) -> list[tuple[int, int]]:
    """One reduction's (x, w) port values, in the PE's operand encoding."""
    if isinstance(pe, XnorPE):
        return list(zip(pack_words(x, pe.lanes, 0), pack_words(w, pe.lanes, 1)))
    if isinstance(pe, ShiftPE):
        return [(int(a), encode_shift_weight(int(s), int(q), pe.max_shift)) for a, s, q in zip(x, w, p)]
    return [(int(a), int(b)) for a, b in zip(x, w)]


def run_pe(pe: ProcessingElement, reductions: list[list[tuple[int, int]]], *,
           gaps: list[int] | None = None) -> list[int]:
    """Feed the reductions back to back (``gaps[i]`` idle cycles with garbage operands after pair i),
    each pair's ``i_add``/``i_restart`` PIPELINE_CYCLES cycles after its operands, and return
    ``o_acc`` at the cycle each reduction is complete."""
    results: list[int] = []

    async def bench(ctx):
        cycle, due = 0, {}
        flags = [(0, 0)] * PIPELINE_CYCLES  # (add, restart) of the pairs presented before

        async def tick():
            nonlocal cycle
            add, restart = flags.pop(0)
            ctx.set(pe.i_add, add)
            ctx.set(pe.i_restart, restart)
            await ctx.tick()
            cycle += 1
            if cycle in due:
                results.append(ctx.get(pe.o_acc))

        for reduction in reductions:
            for i, (x, w) in enumerate(reduction):
                for valid in [1] + [0] * (gaps.pop(0) if gaps else 0):
                    # idle cycles keep the last operands: accumulating them would show
                    ctx.set(pe.i_x, x)
                    ctx.set(Value.cast(pe.i_w), w)
                    flags.append((valid, int(valid and i == 0)))
                    if valid and i == len(reduction) - 1:
                        due[cycle + PORT_TO_ACC_CYCLES] = len(due)
                    await tick()
        while len(results) < len(reductions):
            flags.append((0, 0))
            await tick()

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def check_pe(pe: ProcessingElement, xs: list[np.ndarray], ws: list[np.ndarray],
             ps: list[np.ndarray] | None = None, gaps: list[int] | None = None) -> None:
    """Run one reduction per (x, w) pair and compare with intref."""
    ps = ps or [None] * len(xs)
    got = run_pe(pe, [operand_words(pe, x, w, p) for x, w, p in zip(xs, ws, ps)], gaps=gaps)
    for x, w, p, acc in zip(xs, ws, ps, got):
        ref = int(reference_acc(pe.kind, x[None], w[None], bits=pe.bits, p=None if p is None else p[None],
                                max_shift=getattr(pe, "max_shift", MAX_SHIFT))[0, 0])
        if isinstance(pe, XnorPE):
            acc = 2 * acc - len(x)  # dot = 2P - K
        assert acc == ref, (pe.kind, x, w, p, acc, ref)


def random_operands(kind: str, rng: np.random.Generator, k: int, bits: int = 8
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if kind == "xnor":
        return rng.integers(0, 2, k), rng.integers(0, 2, k), None
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1))
    x = rng.integers(lo, hi, k)
    if kind == "shift":
        return x, rng.integers(-1, 2, k), rng.integers(0, MAX_SHIFT + 1, k)
    return x, rng.integers(lo, hi, k), None


def make(kind: str, k: int, **kw) -> ProcessingElement:
    if kind == "shift":
        kw.setdefault("max_shift", MAX_SHIFT)
    if kind == "xnor":
        kw.setdefault("lanes", 8)
    return PE_CLASSES[kind](k=k, **kw)


@pytest.mark.parametrize("kind", sorted(PE_CLASSES))
def test_pe_random(kind: str) -> None:
    rng = np.random.default_rng(sum(map(ord, kind)))
    k = 20 if kind != "xnor" else 37
    pe = make(kind, k)
    ops = [random_operands(kind, rng, int(rng.integers(1, k + 1))) for _ in range(6)]
    xs, ws, ps = zip(*ops)
    gaps = list(rng.integers(0, 3, sum(len(operand_words(pe, x, w, p)) for x, w, p in ops)))
    check_pe(pe, list(xs), list(ws), None if ps[0] is None else list(ps), gaps=[int(g) for g in gaps])


@settings(max_examples=15, deadline=None)
@given(kind=st.sampled_from(sorted(PE_CLASSES)), bits=st.integers(2, 10), k=st.integers(1, 12),
       seed=st.integers(0, 2 ** 32 - 1))
def test_pe_hypothesis(kind: str, bits: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pe = make(kind, k) if kind == "xnor" else make(kind, k, bits=bits)
    x, w, p = random_operands(kind, rng, k, bits)
    check_pe(pe, [x, x[::-1].copy()], [w, w], None if p is None else [p, p])


def extreme_cases(kind: str, bits: int, k: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Operands at the ends of the ranges, k terms each: the accumulator at its limit."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    full = np.full(k, 1)
    if kind == "xnor":
        return [(full, full, None), (0 * full, full, None), (0 * full, 0 * full, None)]
    if kind == "shift":
        zero_p = 0 * full
        return [(lo * full, -full, zero_p), (lo * full, full, zero_p), (hi * full, full, zero_p),
                (lo * full, 0 * full, zero_p), (hi * full, -full, full * MAX_SHIFT)]
    return [(lo * full, lo * full, None), (lo * full, hi * full, None), (hi * full, lo * full, None),
            (hi * full, hi * full, None), (lo * full, -hi * full, None)]


@pytest.mark.parametrize("kind", sorted(PE_CLASSES))
@pytest.mark.parametrize("k", [1, 7, 16])
def test_pe_extremes(kind: str, k: int) -> None:
    bits = 4
    pe = make(kind, k) if kind == "xnor" else make(kind, k, bits=bits)
    xs, ws, ps = zip(*extreme_cases(kind, bits, k))
    check_pe(pe, list(xs), list(ws), None if ps[0] is None else list(ps))


def brute_force_term_range(kind: str, bits: int, max_shift: int = MAX_SHIFT) -> tuple[int, int]:
    """Smallest and largest accumulation term over every operand value, by enumeration."""
    x = np.arange(-(1 << (bits - 1)), 1 << (bits - 1))
    if kind == "shift":
        terms = np.concatenate([s * (x << (max_shift - p)) for s in (-1, 0, 1)
                                for p in range(max_shift + 1)])
    else:
        xx, ww = np.meshgrid(x, x)
        terms = xx * ww if kind == "mac" else -np.abs(xx - ww)
    return int(terms.min()), int(terms.max())


def signed_width(lo: int, hi: int) -> int:
    """Fewest two's-complement bits holding lo..hi, by search."""
    n = 1
    while not -(1 << (n - 1)) <= lo <= hi < 1 << (n - 1):
        n += 1
    return n


@pytest.mark.parametrize("kind", ["mac", "adder", "shift"])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_pe_acc_width_tight(kind: str, bits: int) -> None:
    """The accumulator is exactly as wide as k extreme terms need: one bit less cannot hold them
    (and is refused), and the extremes are found by enumerating every operand value."""
    lo, hi = brute_force_term_range(kind, bits)
    for k in (1, 2, 3, 16, 17, 576):
        pe = make(kind, k, bits=bits)
        assert pe.acc_shape.signed
        assert pe.acc_shape.width == signed_width(k * min(lo, 0), k * max(hi, 0)), (kind, bits, k)
        with pytest.raises(ValueError):
            make(kind, k, bits=bits, acc_bits=pe.acc_shape.width - 1)


def test_pe_acc_width_by_hand() -> None:
    """A few widths counted by hand: mac 8-bit terms lie in [-127 * 128, 128 * 128]."""
    assert MacPE(bits=8, k=9).acc_shape.width == 19  # 9 * 16384 = 147456 < 2**18
    assert MacPE(bits=8, k=16).acc_shape.width == 20  # 16 * 16384 = 2**18
    assert AdderPE(bits=8, k=2).acc_shape.width == 10  # 2 * -255 = -510 >= -512
    assert ShiftPE(bits=8, max_shift=7, k=1).acc_shape.width == 16  # |x << 7| <= 2**14


def test_pe_xnor_width() -> None:
    pe = XnorPE(lanes=64, k=576)
    assert pe.acc_shape.width == 10 and not pe.acc_shape.signed  # P <= 9 * 64 = 576
    assert XnorPE(lanes=64, k=5).acc_shape.width == 7  # one word may count up to 64


def test_pe_drain() -> None:
    """``i_shift`` loads ``i_acc`` and takes precedence over holding."""
    pe = MacPE(bits=4, k=3)

    async def bench(ctx):
        ctx.set(pe.i_acc, -100)
        ctx.set(pe.i_shift, 1)
        await ctx.tick()
        assert ctx.get(pe.o_acc) == -100
        ctx.set(pe.i_shift, 0)
        await ctx.tick()
        assert ctx.get(pe.o_acc) == -100

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_encode_shift_weight() -> None:
    assert encode_shift_weight(1, 3, 7) == 0b0_0_011
    assert encode_shift_weight(-1, 0, 7) == 0b0_1_000
    assert encode_shift_weight(0, 0, 7) == 0b1_0_000


def test_encode_shift_weight_wrong() -> None:
    with pytest.raises(ValueError, match=r"^`s` must be -1, 0 or 1, not 2$"):
        encode_shift_weight(2, 0, 7)
    with pytest.raises(ValueError, match=r"^`p` must be an integer from 0 to 7, not 8$"):
        encode_shift_weight(1, 8, 7)


@pytest.mark.parametrize("cls", [MacPE, AdderPE, ShiftPE])
def test_pe_bits_wrong(cls: type[ProcessingElement]) -> None:
    for bad in (0, 1, -3, 17):
        with pytest.raises(ValueError, match=rf"^`bits` must be an integer from 2 to 16, not {bad}$"):
            cls(bits=bad, k=4)
    with pytest.raises(TypeError, match=r"^`bits` must be an integer from 2 to 16, not '8'$"):
        cls(bits="8", k=4)
    with pytest.raises(TypeError, match=r"^`bits` must be an integer from 2 to 16, not True$"):
        cls(bits=True, k=4)


@pytest.mark.parametrize("kind", sorted(PE_CLASSES))
def test_pe_k_wrong(kind: str) -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match=rf"^`k` must be a positive integer, not {bad}$"):
            make(kind, bad)
    with pytest.raises(TypeError, match=r"^`k` must be a positive integer, not 2.5$"):
        make(kind, 2.5)


def test_pe_acc_bits_wrong() -> None:
    with pytest.raises(ValueError, match=r"^`acc_bits` of 15 cannot hold a mac reduction of k=1; "
                                         r"it needs at least 16$"):
        MacPE(bits=8, k=1, acc_bits=15)
    with pytest.raises(ValueError, match=r"^`acc_bits` must be a positive integer, not 0$"):
        AdderPE(bits=8, k=1, acc_bits=0)
    with pytest.raises(ValueError, match=r"^`acc_bits` of 9 cannot hold a adder reduction of k=2; "
                                         r"it needs at least 10$"):
        AdderPE(bits=8, k=2, acc_bits=9)


def test_pe_xnor_wrong() -> None:
    for bad in (0, 2, 8):
        with pytest.raises(ValueError, match=rf"^`bits` must be 1 for the xnor PE, not {bad}$"):
            XnorPE(bits=bad, k=8)
    for bad in (0, -4):
        with pytest.raises(ValueError, match=rf"^`lanes` must be a positive integer, not {bad}$"):
            XnorPE(lanes=bad, k=8)


def test_pe_shift_wrong() -> None:
    for bad in (-1, 17):
        with pytest.raises(ValueError, match=rf"^`max_shift` must be an integer from 0 to 16, not {bad}$"):
            ShiftPE(max_shift=bad, k=8)


def test_pe_widths_documented() -> None:
    """Shapes the array and emit rely on: operands, stage widths and the weight code of shift
    (3-bit p for P = 7, the sign and the zero flag)."""
    assert ShiftPE(bits=8, max_shift=7, k=4).w_shape.size == 3 + 1 + 1
    assert XnorPE(lanes=64, k=64).x_shape.width == 64
    assert math.ceil(100 / 64) == XnorPE(lanes=64, k=100).steps


def test_pespec_shapes() -> None:
    """A PESpec computes shapes without building anything."""
    mac = PESpec("mac", 8, 9)
    assert (mac.steps, mac.lanes, mac.acc_bits) == (9, 1, None)
    assert (mac.x_shape, mac.w_shape, mac.acc_shape) == (signed(8), signed(8), signed(19))
    assert PESpec("adder", 8, 4, lanes=16).lanes == 1  # lanes are an xnor parameter only
    xnor = PESpec("xnor", 1, 100, lanes=64)
    # two words of 64 lanes; the accumulator counts up to 2 * 64 (padding included): 8 bits
    assert (xnor.steps, xnor.x_shape, xnor.w_shape, xnor.acc_shape) == (
        2, unsigned(64), unsigned(64), unsigned(8))
    shift = PESpec("shift", 8, 4, max_shift=3)
    assert shift.w_shape.size == 2 + 1 + 1 and shift.acc_shape == signed(14)  # 4 * 2**10 = 2**12
    assert PESpec("mac", 8, 9, acc_bits=40).acc_shape == signed(40)
    assert PESpec("xnor", 1, 100, lanes=64, acc_bits=12).acc_shape == unsigned(12)
    with pytest.raises(dataclasses.FrozenInstanceError):
        mac.k = 10  # type: ignore[misc]
    assert PESpec("mac", 8, 9) == mac and hash(PESpec("mac", 8, 9)) == hash(mac)


def test_pespec_wrong() -> None:
    with pytest.raises(ValueError, match=r"^`pe` must be one of mac, adder, xnor, shift, not 'fma'$"):
        PESpec("fma", 8, 4)
    with pytest.raises(ValueError, match=r"^`bits` must be an integer from 2 to 16, not 1$"):
        PESpec("mac", 1, 4)
    with pytest.raises(ValueError, match=r"^`k` must be a positive integer, not 0$"):
        PESpec("adder", 8, 0)
    with pytest.raises(ValueError, match=r"^`acc_bits` of 18 cannot hold a mac reduction of k=9; "
                                         r"it needs at least 19$"):
        PESpec("mac", 8, 9, acc_bits=18)
    with pytest.raises(ValueError, match=r"^`max_shift` must be an integer from 0 to 16, not 17$"):
        PESpec("shift", 8, 4, max_shift=17)


@pytest.mark.parametrize("spec", [PESpec("mac", 8, 6, acc_bits=40), PESpec("adder", 5, 6),
                                  PESpec("shift", 6, 6, max_shift=MAX_SHIFT),
                                  PESpec("xnor", 1, 21, lanes=8)], ids=str)
def test_pespec_build(spec: PESpec) -> None:
    """``build`` makes the PE of that kind with exactly the spec's ports, and it computes."""
    pe = spec.build()
    assert type(pe) is PE_CLASSES[spec.kind] and pe.spec == spec
    assert (len(pe.o_acc), pe.o_acc.shape().signed) == (spec.acc_shape.width, spec.acc_shape.signed)
    assert len(pe.i_acc) == spec.acc_shape.width
    rng = np.random.default_rng(spec.k)
    x, w, p = random_operands(spec.kind, rng, spec.k, spec.bits)
    check_pe(pe, [x], [w], None if p is None else [p])

# amaranth: UnusedElaboratable=no
"""The output-stationary array on Amaranth's simulator: GEMM folds against models.intref, cycles
against :func:`rtl.array.fold_cycles` and :func:`hwsim.dataflow.compute_cycles`."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth.sim import Simulator

from contract import PIPELINE_CYCLES
from hwsim.dataflow import compute_cycles
from rtl.array import SystolicArray, fold_cycles
from rtl.pe import PE_CLASSES, PESpec, encode_shift_weight
from test_rtl_pe import MAX_SHIFT, pack_words, random_operands, reference_acc

#: Amaranth-simulator tier (see pyproject.toml markers); tool tests are also marked rtl.
pytestmark = pytest.mark.amaranth


def gemm_beats(arr: SystolicArray, a: np.ndarray, b: np.ndarray,
               p: np.ndarray | None) -> list[tuple[list[int], list[int]]]:
    """A (rows, K) and B (K, cols) -> per-beat port values (x per row, w per column)."""
    if arr.kind == "xnor":
        lanes = arr.pe.lanes
        xs = [pack_words(row, lanes, 0) for row in a]
        ws = [pack_words(col, lanes, 1) for col in b.T]
        return [([x[j] for x in xs], [w[j] for w in ws]) for j in range(len(xs[0]))]
    if arr.kind == "shift":
        return [([int(v) for v in a[:, j]],
                 [encode_shift_weight(int(s), int(q), MAX_SHIFT) for s, q in zip(b[j], p[j])])
                for j in range(a.shape[1])]
    return [([int(v) for v in a[:, j]], [int(v) for v in b[j]]) for j in range(a.shape[1])]


def run_array(arr: SystolicArray, folds: list[list[tuple[list[int], list[int]]]], *,
              valid_pattern=(1,), ready_pattern=(1,)) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    """Stream the folds in, collect each fold's (rows, cols) result and its (first in, last out)
    transfer cycles."""
    results: list[np.ndarray] = []
    spans: list[tuple[int, int]] = []
    beats = [(x, w, j == len(fold) - 1, f) for f, fold in enumerate(folds) for j, (x, w) in enumerate(fold)]
    starts: dict[int, int] = {}

    async def producer(ctx):
        cycle = 0
        for x, w, last, fold in beats:
            for valid in itertools.cycle(valid_pattern):
                ctx.set(arr.i_operands.payload.x.as_value(), _pack(arr, "x", x))
                ctx.set(arr.i_operands.payload.w.as_value(), _pack(arr, "w", w))
                ctx.set(arr.i_operands.payload.last, int(last))
                ctx.set(arr.i_operands.valid, valid)
                _, _, ready = await ctx.tick().sample(arr.i_operands.ready)
                cycle += 1
                if valid and ready:
                    starts.setdefault(fold, cycle - 1)
                    break  # else an idle cycle: the operands on the port must not be accumulated
        ctx.set(arr.i_operands.valid, 0)

    async def consumer(ctx):
        cycle, rows = 0, []
        for ready in itertools.cycle(ready_pattern):
            ctx.set(arr.o_results.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(arr.o_results.valid, arr.o_results.payload)
            cycle += 1
            if valid and ready:
                rows.append([int(v) for v in payload])
                if len(rows) == arr.rows:
                    results.append(np.array(rows[::-1]))
                    spans.append((starts[len(spans)], cycle - 1))
                    rows = []
                    if len(results) == len(folds):
                        return

    sim = Simulator(arr)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    return results, spans


def _pack(arr: SystolicArray, field: str, values: list[int]) -> int:
    shape = arr.x_shape if field == "x" else arr.w_shape
    width = shape.size if hasattr(shape, "size") else shape.width
    return sum((v & ((1 << width) - 1)) << (i * width) for i, v in enumerate(values))


def make_array(kind: str, rows: int, cols: int, k: int, overlap: bool = False) -> SystolicArray:
    spec = (PESpec("xnor", 1, k, lanes=4) if kind == "xnor" else
            PESpec(kind, 8, k, max_shift=MAX_SHIFT))
    return SystolicArray(rows=rows, cols=cols, pe=spec, overlap=overlap)


def random_gemm(kind: str, rng: np.random.Generator, rows: int, cols: int, k: int):
    a = np.stack([random_operands(kind, rng, k)[0] for _ in range(rows)])
    wp = [random_operands(kind, rng, k) for _ in range(cols)]
    b = np.stack([w for _, w, _ in wp], axis=1)
    p = None if wp[0][2] is None else np.stack([q for _, _, q in wp], axis=1)
    return a, b, p


def reference(kind: str, a: np.ndarray, b: np.ndarray, p: np.ndarray | None) -> np.ndarray:
    return reference_acc(kind, a, b.T, p=None if p is None else p.T)


def to_dot(kind: str, acc: np.ndarray, k: int) -> np.ndarray:
    return 2 * acc - k if kind == "xnor" else acc


@pytest.mark.parametrize("kind", sorted(PE_CLASSES))
def test_array_gemm(kind: str) -> None:
    """Two 4x4 folds (K = 5 and 13) back to back, then the cycles of each against the formula."""
    rng = np.random.default_rng(7)
    rows, cols, kmax = 4, 4, 20
    arr = make_array(kind, rows, cols, kmax)
    gemms = [random_gemm(kind, rng, rows, cols, k) for k in (5, 13)]
    folds = [gemm_beats(arr, *g) for g in gemms]
    results, spans = run_array(arr, folds)
    for (a, b, p), got in zip(gemms, results):
        np.testing.assert_array_equal(to_dot(kind, got, a.shape[1]), reference(kind, a, b, p))
    for fold, (start, end) in zip(folds, spans):
        assert end - start + 1 == fold_cycles(rows, cols, len(fold))
    # back to back: the second fold's first beat right after the first fold's last output
    assert spans[1][0] == spans[0][1] + 1


@pytest.mark.parametrize("kind", sorted(PE_CLASSES))
@pytest.mark.parametrize("rows,cols", [(4, 4), (3, 5)])
def test_array_fold_overlap(kind: str, rows: int, cols: int) -> None:
    """Folds of K = 5, 2, 13, 1, 4, 9 pipelined: each fold's results equal the reference, and
    with the input always valid, fold ``f``'s last beat is accepted at ``T_f = max(T_{f-1} + K_f,
    T_{f-1} + rows)`` (``T_0 = K_0 - 1``: a fold's last beat waits ``rows`` cycles after the
    previous one's, while the drain registers pass their rows on), its first beat the cycle after
    ``T_{f-1}`` (unless it is the last), and its last row leaves ``2 * rows + cols + 1`` cycles after ``T_f``: PE ``(R-1,
    C-1)`` has the sum ``R + C + 1`` cycles after the last beat (skew and PE pipeline), it is in
    the drain register one cycle later and the ``rows`` rows leave one a cycle."""
    rng = np.random.default_rng(11)
    ks = [5, 2, 13, 1, 4, 9]
    arr = make_array(kind, rows, cols, max(ks), overlap=True)
    gemms = [random_gemm(kind, rng, rows, cols, k) for k in ks]
    folds = [gemm_beats(arr, *g) for g in gemms]
    results, spans = run_array(arr, folds)
    for (a, b, p), got in zip(gemms, results):
        np.testing.assert_array_equal(to_dot(kind, got, a.shape[1]), reference(kind, a, b, p))
    beats = [len(fold) for fold in folds]  # xnor: ceil(K / 4) words
    last = [beats[0] - 1]
    for k in beats[1:]:
        last.append(max(last[-1] + k, last[-1] + rows))
    # a fold's first beat follows the last one of the fold before (a fold of one beat: it waits)
    assert [start for start, _ in spans] == [0] + [t + 1 if k > 1 else now
                                                   for t, now, k in zip(last, last[1:], beats[1:])]
    assert [end for _, end in spans] == [t + 2 * rows + cols + 1 for t in last]


@pytest.mark.parametrize("kind", ["mac", "adder"])
def test_array_backpressure(kind: str) -> None:
    """Idle input cycles and a stalling consumer change the timing, not the results."""
    rng = np.random.default_rng(3)
    arr = make_array(kind, 3, 2, 20)
    gemms = [random_gemm(kind, rng, 3, 2, k) for k in (1, 20, 7)]
    results, _ = run_array(arr, [gemm_beats(arr, *g) for g in gemms],
                           valid_pattern=(1, 1, 0), ready_pattern=(1, 0, 0, 1))
    for (a, b, p), got in zip(gemms, results):
        np.testing.assert_array_equal(got, reference(kind, a, b, p))


def test_array_extremes() -> None:
    """Most negative activations and weights for the full K the array was sized for."""
    rows, cols, k = 2, 3, 16
    arr = make_array("mac", rows, cols, k)
    a = np.full((rows, k), -128)
    b = np.full((k, cols), -128)
    b[:, 1] = 127
    results, _ = run_array(arr, [gemm_beats(arr, a, b, None)])
    np.testing.assert_array_equal(results[0], reference("mac", a, b, None))
    # 16 * (-128)**2 = 2**18 needs 20 signed bits: one more than intref's acc_bits (symmetric w)
    assert results[0][0, 0] == 2 ** 18 and arr.acc_shape.width == 20


@pytest.mark.parametrize("rows,cols,k", [(4, 4, 5), (4, 4, 20), (2, 5, 9), (1, 1, 1)])
def test_array_fold_cycles_vs_hwsim(rows: int, cols: int, k: int) -> None:
    """Measured cycles of one fold = hwsim's per-fold ``2R + C + K - 2`` + the PE's 2 stages."""
    rng = np.random.default_rng(k)
    arr = make_array("mac", rows, cols, k)
    a, b, p = random_gemm("mac", rng, rows, cols, k)
    _, spans = run_array(arr, [gemm_beats(arr, a, b, p)])
    measured = spans[0][1] - spans[0][0] + 1
    model = compute_cycles(rows, k, cols, rows, cols, "os", pe_pipeline=PIPELINE_CYCLES).fold_cycles
    assert model == 2 * rows + cols + k  # written out independently of the code
    assert measured == fold_cycles(rows, cols, k) == model


def test_array_wrong() -> None:
    for bad in (0, -2):
        with pytest.raises(ValueError, match=rf"^`rows` must be a positive integer, not {bad}$"):
            SystolicArray(rows=bad, cols=2, pe=PESpec("mac", 8, 4))
        with pytest.raises(ValueError, match=rf"^`cols` must be a positive integer, not {bad}$"):
            SystolicArray(rows=2, cols=bad, pe=PESpec("mac", 8, 4))
    with pytest.raises(TypeError, match=r"^`pe` must be a PESpec, not 'mac'$"):
        SystolicArray(rows=2, cols=2, pe="mac")


def test_array_shapes() -> None:
    """Port shapes follow the PESpec: 64 positions in 16-lane words are 4 beats counting up to
    64 (7 unsigned bits); a shift weight of P = 7 is a 5-bit code (3-bit p, sign, zero)."""
    arr = SystolicArray(rows=2, cols=3, pe=PESpec("xnor", 1, 64, lanes=16))
    assert arr.kind == "xnor" and arr.steps == 4
    assert (arr.acc_shape.width, arr.acc_shape.signed) == (7, False)
    assert len(arr.i_operands.payload.x.as_value()) == 2 * 16
    assert len(arr.i_operands.payload.w.as_value()) == 3 * 16
    assert len(arr.o_results.payload.as_value()) == 3 * 7
    arr = SystolicArray(rows=2, cols=3, pe=PESpec("shift", 8, 9, max_shift=7))
    assert arr.kind == "shift" and arr.steps == 9
    assert len(arr.i_operands.payload.w.as_value()) == 3 * 5
    # 9 terms of at most 2**(8 - 1 + 7) = 16384 in magnitude: 9 * 16384 = 147456 -> 19 signed bits
    assert (arr.acc_shape.width, arr.acc_shape.signed) == (19, True)

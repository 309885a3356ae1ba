"""FPGA resources (LUTs, FFs, carry cells, DSPs, BRAMs) of hwsim's generated accelerator.

The numbers come from real synthesis, not from gate counts: ``benchmarks/calibrate_fpga.py``
synthesizes the generated PEs and small arrays with Yosys and writes ``data/fpga_synth.json``
(tool version, command and date inside); this module fits simple, explainable forms to it on
first use (a few milliseconds) and sums an accelerator from them:

* **one PE** of a kind on a target, as a function of ``x`` = the operand width ``bits`` (xnor:
  the lane count, at 1 bit), by least squares on the calibrated points (``numpy.linalg.lstsq``):

  - LUTs of a multiplier in LUTs (mac, LUT-only or too narrow for a DSP):
    ``a*x^2 + b*x + c`` (array multiplier, quadratic; accumulator and drain mux, linear);
  - LUTs of every other PE (adder, shift, xnor, mac with its product in a DSP), and FFs and
    carry cells of every PE: ``b*x + c`` (operand, pipeline and accumulator registers and the
    adders are all linear in the width at a fixed reduction length K);
  - DSPs: Yosys's own rule (``mul2dsp`` in Yosys 0.50's ``synth_*``): a product goes to DSPs when
    it is at least :data:`DSP_MIN_PRODUCT_BITS` wide and the kind showed DSPs in calibration,
    ``ceil(bits / A) * ceil(bits / B)`` blocks of the family's ``A x B`` multiplier.

  The largest relative residual of each fit on its own points is kept in :attr:`Fit.max_error`
  (``python -m cost_models.fpga`` prints every fit). For the shipped calibration (Yosys 0.50;
  widths 4, 5, 8, 10, 16; xnor 8..128 lanes; xc7, ice40, ecp5; recalibrated 2026-12-07 when the
  flags left the PE): FFs within 2.2 % (exact but for xnor); LUTs within 3 % on ecp5, 7 % on
  ice40, 16 % on xc7 (ABC's LUT6 packing: the 4..10-bit adder is 58..67 LUTs, not monotone) and
  27 % for xnor on ecp5 (the line misses the 8-lane PE); carry cells within 13 % (ecp5 xnor:
  26 %, one or two cells of ten). The held-out test
  (6- and 12-bit PEs, fresh synthesis) checks interpolation, ``tests/test_fpga_model.py``.
* **the array**: ``n = rows * cols`` PEs, plus the skew registers that delay row ``r``'s
  activations by ``r`` cycles and column ``c``'s weights by ``c`` cycles, and the delay line of
  the pairs' flags (valid, first) that every anti-diagonal of PEs reads -- counted exactly,
  ``x_bits * rows*(rows-1)/2 + w_bits * cols*(cols-1)/2 + 2 * (rows + cols - 2 +
  PIPELINE_CYCLES)`` FFs -- plus ``d*n + g``, fitted to what the calibrated 2x2, 2x4 and 4x4
  arrays (8 bits; xnor 64 lanes) have beyond their standalone PEs and skew: ``g`` is the
  **control** (fold FSM, counter, handshake), ``d`` what a PE gains or saves **inside** the
  array (Yosys folds the top row's zero ``i_acc``, and with DSPs absorbs more pipeline
  registers). :attr:`FpgaModel.array_error` is the largest
  relative error of the whole-array prediction on the calibrated arrays: within 10 % (FFs 0.3 %),
  except xc7 adder LUTs (23 %, its PE residual times n) and xc7 mac with DSPs (25 % LUTs, 16 %
  FFs at 2x2).
* **buffers**: :func:`buffer_brams` from capacity and port width and the family's block RAM
  (:data:`BRAMS`, from the vendor datasheets); the fit covers PEs and arrays only, not the
  generated top's buffers (``hwsim rtl synth`` reports those from Yosys).

Not modelled: a configured ``acc_bits`` (the generator's default K is what was synthesized),
MUXF7/F8 and I/O buffers, place-and-route packing into slices.

Fmax (:func:`fmax_mhz`, :class:`FmaxModel`)
-------------------------------------------
``benchmarks/calibrate_fmax.py`` places and routes the same PEs and 2x2 / 4x4 arrays with nextpnr
on an iCE40-HX8K and an LFE5U-85F, with several seeds, and writes ``data/fpga_fmax.json``. The
model works on the critical-path delay ``1000 / Fmax`` (ns) of each calibrated point's median
seed:

* **one PE**: ``delay = b*x + c`` per (kind, target, product in DSPs), ``x`` the operand width
  (xnor: ``log2(lanes)``, the depth of its popcount tree); a ripple-carry accumulator, an adder
  or a barrel shifter are linear in the width, and so is the depth of a LUT array multiplier;
* **an array** of ``n = rows * cols > 1`` PEs: the PE's delay times a per-target factor, the mean
  of ``delay(array) / delay(PE)`` over the calibrated 2x2 and 4x4 arrays of every kind (routing
  between PEs and the fold control's fan-out). Paths in the systolic array run between
  neighbours only, so the factor is used unchanged beyond 4x4: an **extrapolation**; arrays of
  8x8 and more cannot be placed standalone (more I/O ports than the packages' ~205 pins).

Residuals (``python -m cost_models.fpga``; :attr:`FmaxModel.pe_error`, :attr:`FmaxModel.array_error`)
are relative errors of the predicted Fmax against the median of the seeds, and
:attr:`FmaxModel.spread` is the seed-to-seed spread, ``(max - min) / median`` of a point's
seeds: the model cannot be more exact than that. For the shipped calibration (Yosys 0.50,
nextpnr 0.11.1, seeds 1-3; rerun 2026-12-07 for the PE without flag registers): PEs within
4.8 % (ecp5) and 4.1 % (ice40), arrays within 18 % (ecp5: its seeds spread by up to 43 %, the
2x2 adder array placing at 126, 138 and 182 MHz) and 12 % (ice40, spread up to 15 %); the array
factor is 1.08 (ecp5) and 1.14 (ice40). The held-out points (``held_out`` rows: 12-bit mac and
adder, 24-lane xnor), never fitted, are within 4.3 %, but for the 24-lane xnor on ecp5 at
-8.4 % (``tests/test_fpga_model.py``). The run before (2026-12-03, the PE with its own flag
registers; the timed paths are register to register in both, the flags' ports are not timed)
had PEs within 1.9 % and 3.3 %, arrays 27 % and 8.7 %, held-out points within 5.3 %: its
medians and this run's differ by -17 % to +10 % point by point, with no trend -- what three
seeds of nextpnr can tell apart. iCE40 is calibrated on
the HX8K, which has no DSPs: its mac Fmax is always the LUT multiplier's. xc7 has no open place
and route here, so there is no Fmax for it (:func:`fmax_mhz` raises ValueError).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from contract import DEFAULT_MAX_SHIFT, PIPELINE_CYCLES, weight_code_bits

__all__ = ["BRAMS", "DATA_PATH", "DSP_MIN_PRODUCT_BITS", "FMAX_PATH", "PLACE_MODES", "TARGETS", "BlockRam", "Fit",
           "FmaxModel", "FpgaModel", "accelerator_resources", "buffer_brams", "fmax_mhz", "load_fmax_model",
           "load_model"]

TARGETS = ("xc7", "ice40", "ecp5")
#: Which arrays an FPGA flow places with nextpnr (``hwsim report fpga-compare --place``): all (an
#: array larger than the device is refused), those that fit, or none; an array not placed gets the
#: Fmax of :func:`fmax_mhz` instead, an estimate.
PLACE_MODES = ("all", "fitting", "none")
DATA_PATH = Path(__file__).parent / "data" / "fpga_synth.json"
FMAX_PATH = Path(__file__).parent / "data" / "fpga_fmax.json"
#: Resources the model predicts per PE and in total.
RESOURCES = ("lut", "ff", "carry", "dsp", "bram")

#: Narrowest product Yosys 0.50 puts into a DSP (``DSP_Y_MINWIDTH`` of ``mul2dsp`` in
#: ``synth_xilinx`` and ``synth_ice40 -dsp``; ``synth_ecp5`` sets none), and the DSP multiplier's
#: operand widths A x B (DSP48E1 25x18, SB_MAC16 16x16, MULT18X18D 18x18).
DSP_MIN_PRODUCT_BITS = {"xc7": 9, "ice40": 11, "ecp5": 0}
DSP_OPERAND_BITS = {"xc7": (25, 18), "ice40": (16, 16), "ecp5": (18, 18)}


@dataclass(frozen=True)
class BlockRam:
    """One block RAM primitive: data bits (parity bits excluded: hwsim's buffers hold power-of-two
    words, which cannot use them), widest data port, and the datasheet it is read from."""

    primitive: str
    data_bits: int
    port_bits: int
    source: str


BRAMS: dict[str, BlockRam] = {
    "xc7": BlockRam("RAMB36E1", 32 * 1024, 64,
                    "Xilinx UG473 (v1.14) 7 Series FPGAs Memory Resources, ch. 1: a 36 Kb block RAM "
                    "is 32 Kb data + 4 Kb parity, 64 data bits wide (72 with parity) in simple dual-port"),
    "ice40": BlockRam("SB_RAM40_4K", 4 * 1024, 16,
                      "Lattice FPGA-DS-02029 iCE40 LP/HX Family Data Sheet, sysMEM Embedded Block RAM: "
                      "4 Kbit per EBR, 256 x 16 at the widest"),
    "ecp5": BlockRam("DP16KD", 16 * 1024, 32,
                     "Lattice FPGA-DS-02012 ECP5 and ECP5-5G Family Data Sheet, sysMEM: 18 Kbit per "
                     "block (16 Kbit without the 9th bits), 512 x 36 in pseudo dual-port"),
}

_BASIS = {"x^2": lambda x: x * x, "x": lambda x: x, "1": lambda x: 1.0}


@dataclass(frozen=True)
class Fit:
    """``value(x) = sum(coef[i] * basis[terms[i]](x))``, least squares over ``points`` (x, value).

    ``max_error`` is the largest relative residual ``|fit - value| / value`` on the points.
    """

    terms: tuple[str, ...]
    coef: tuple[float, ...]
    points: tuple[tuple[float, float], ...]
    max_error: float

    @classmethod
    def least_squares(cls, terms: Sequence[str], points: Iterable[tuple[float, float]]) -> Fit:
        pts = tuple(sorted(set(points)))
        if len({x for x, _ in pts}) < len(terms):
            raise ValueError(f"{len(terms)} terms need as many distinct widths, got {pts}")
        a = np.array([[_BASIS[t](x) for t in terms] for x, _ in pts])
        y = np.array([v for _, v in pts])
        coef = np.linalg.lstsq(a, y, rcond=None)[0]
        fitted = a @ coef
        err = max((abs(f - v) / v for f, v in zip(fitted, y) if v), default=0.0)
        return cls(tuple(terms), tuple(float(c) for c in coef), pts, float(err))

    def __call__(self, x: float) -> float:
        return sum(c * _BASIS[t](x) for c, t in zip(self.coef, self.terms))

    def __str__(self) -> str:
        return " + ".join(f"{c:.4g}*{t}" if t != "1" else f"{c:.4g}" for c, t in zip(self.coef, self.terms))


@dataclass(frozen=True)
class FpgaModel:
    """Fits per (kind, target, uses DSP, resource) of one PE and of the array's extra.

    Built by :func:`load_model`; ``meta`` holds the data file's tool, command, date and K.
    """

    fits: dict[tuple[str, str, bool, str], Fit]
    #: (kind, target, uses DSP, resource) -> ``d*n + g`` (``Fit`` terms "x", "1" with x = n).
    in_array: dict[tuple[str, str, bool, str], Fit] = field(default_factory=dict)
    #: (kind, target, uses DSP, resource) -> largest relative error on a calibrated array.
    array_error: dict[tuple[str, str, bool, str], float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(t for t in TARGETS if any(key[1] == t for key in self.fits))

    def _check(self, kind: str, target: str) -> None:
        if target not in TARGETS:
            raise ValueError(f"`target` must be one of {', '.join(TARGETS)}, not {target!r}")
        if not any(key[:2] == (kind, target) for key in self.fits):
            raise ValueError(f"no FPGA calibration for {kind} on {target} in {DATA_PATH.name}; run "
                             f"benchmarks/calibrate_fpga.py --targets {','.join((*self.targets, target))}")

    def uses_dsp(self, kind: str, bits: int, target: str, *, lut_only: bool = False) -> bool:
        """Whether synthesis puts this PE's product into DSPs (see the module docstring)."""
        return (not lut_only and (kind, target, True, "lut") in self.fits
                and 2 * bits >= DSP_MIN_PRODUCT_BITS[target])

    def pe(self, kind: str, bits: int, target: str, *, lanes: int = 64,
           lut_only: bool = False) -> dict[str, float]:
        """Resources of one PE; ``bits`` is ignored for xnor, which scales with ``lanes``."""
        self._check(kind, target)
        dsp = self.uses_dsp(kind, bits, target, lut_only=lut_only)
        x = lanes if kind == "xnor" else bits
        out = {r: self.fits[(kind, target, dsp, r)](x) for r in ("lut", "ff", "carry")}
        a, b = DSP_OPERAND_BITS[target]
        out["dsp"] = math.ceil(bits / a) * math.ceil(bits / b) if dsp else 0
        out["bram"] = 0
        return out

    def array(self, kind: str, bits: int, rows: int, cols: int, target: str, *, lanes: int = 64,
              lut_only: bool = False) -> dict[str, dict[str, float]]:
        """Resources of a ``rows x cols`` array in three blocks: ``pes`` (``n`` standalone PEs),
        ``skew`` (input skew registers) and ``in_array`` (``d*n + g``: control, less what Yosys
        merges across PEs; may be negative)."""
        pe = self.pe(kind, bits, target, lanes=lanes, lut_only=lut_only)
        n = rows * cols
        dsp = self.uses_dsp(kind, bits, target, lut_only=lut_only)
        zero = dict.fromkeys(RESOURCES, 0.0)
        in_array = {**zero, **{r: self.in_array[(kind, target, dsp, r)](n) for r in ("lut", "ff", "carry")}}
        return {"pes": {r: n * v for r, v in pe.items()},
                "skew": {**zero, "ff": float(skew_ffs(kind, bits, rows, cols, lanes=lanes))},
                "in_array": in_array}


def skew_ffs(kind: str, bits: int, rows: int, cols: int, *, lanes: int = 64) -> int:
    """Flip-flops of the array's input skew: row ``r`` delays the activation by ``r`` cycles,
    column ``c`` the weight by ``c`` cycles, and the flags (valid, first) go down one delay line
    to the last anti-diagonal's pipeline registers (rtl.array.SystolicArray)."""
    x_bits = lanes if kind == "xnor" else bits
    w_bits = {"xnor": lanes, "shift": weight_code_bits(DEFAULT_MAX_SHIFT)}.get(kind, bits)
    return (x_bits * rows * (rows - 1) // 2 + w_bits * cols * (cols - 1) // 2
            + 2 * (rows + cols - 2 + PIPELINE_CYCLES))


def buffer_brams(capacity_kib: float, width_bits: int, target: str) -> int:
    """Block RAMs of one ``capacity_kib`` buffer read ``width_bits`` at a time on ``target``:
    enough blocks for the bits, and enough side by side for the port width."""
    ram = BRAMS[target]
    return max(math.ceil(capacity_kib * 8192 / ram.data_bits), math.ceil(width_bits / ram.port_bits))


def _x(row: dict[str, Any]) -> int:
    return row["lanes"] if row["kind"] == "xnor" else row["bits"]


def fit_model(data: dict[str, Any]) -> FpgaModel:
    """Fit the per-PE forms and the in-array terms to calibration ``data`` (the data file's mapping)."""
    groups: dict[tuple[str, str, bool], list[dict[str, Any]]] = {}
    for row in data["pe"]:
        groups.setdefault((row["kind"], row["target"], row["dsp"] > 0), []).append(row)
    fits = {}
    for (kind, target, dsp), rows in groups.items():
        for r in ("lut", "ff", "carry"):
            quadratic = r == "lut" and kind == "mac" and not dsp
            terms = ("x^2", "x", "1") if quadratic else ("x", "1")
            fits[(kind, target, dsp, r)] = Fit.least_squares(terms, ((_x(row), row[r]) for row in rows))
    model = FpgaModel(fits, meta={k: data[k] for k in ("tool", "command", "date", "k")})
    arrays: dict[tuple[str, str, bool], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for row in data["array"]:
        pe = next(p for p in data["pe"] if all(p[k] == row[k] for k in ("kind", "bits", "lanes", "target", "lut_only")))
        arrays.setdefault((row["kind"], row["target"], row["dsp"] > 0), []).append((row, pe))
    for (kind, target, dsp), rows in arrays.items():
        for r in ("lut", "ff", "carry"):
            extra = [(row["rows"] * row["cols"], row[r] - row["rows"] * row["cols"] * pe[r]
                      - (skew_ffs(kind, row["bits"], row["rows"], row["cols"], lanes=row["lanes"]) if r == "ff" else 0))
                     for row, pe in rows]
            model.in_array[(kind, target, dsp, r)] = Fit.least_squares(("x", "1"), extra)
        for row, _ in rows:
            blocks = model.array(kind, row["bits"], row["rows"], row["cols"], target, lanes=row["lanes"],
                                 lut_only=row["lut_only"])
            for r in ("lut", "ff", "carry"):
                error = abs(sum(block[r] for block in blocks.values()) - row[r]) / row[r] if row[r] else 0.0
                key = (kind, target, dsp, r)
                model.array_error[key] = max(model.array_error.get(key, 0.0), error)
    return model


@functools.cache
def load_model(path: Path = DATA_PATH) -> FpgaModel:
    """The model fitted to ``path`` (cached: the file is read and fitted once per process)."""
    return fit_model(json.loads(path.read_text()))


def accelerator_resources(kind: str, bits: int, rows: int, cols: int, target: str, *, lanes: int = 64,
                          buffers_kib: Sequence[float] = (), width_bits: int = 64,
                          lut_only: bool = False) -> dict[str, dict[str, float]]:
    """Resources of a whole accelerator by block (``pes``, ``skew``, ``in_array``, ``buffers``) and
    their ``total``; each block maps :data:`RESOURCES` to a count (fractional where fitted)."""
    blocks = load_model().array(kind, bits, rows, cols, target, lanes=lanes, lut_only=lut_only)
    blocks["buffers"] = {**dict.fromkeys(RESOURCES, 0.0),
                         "bram": float(sum(buffer_brams(kib, width_bits, target) for kib in buffers_kib))}
    blocks["total"] = {r: sum(b[r] for b in blocks.values()) for r in RESOURCES}
    return blocks


def _fmax_x(kind: str, bits: int, lanes: int) -> float:
    """The variable a PE's delay is linear in: the operand width, for xnor ``log2(lanes)``."""
    return math.log2(lanes) if kind == "xnor" else bits


@dataclass(frozen=True)
class FmaxModel:
    """Critical-path delay fits (ns) per (kind, target, product in DSPs), the array factor per
    target, and the residuals and seed spread they carry (see the module docstring).

    Built by :func:`load_fmax_model`; ``meta`` holds the data file's tools, command and date.
    """

    delay: dict[tuple[str, str, bool], Fit]
    array_factor: dict[str, float]
    #: target -> largest relative Fmax error on the calibrated PEs / arrays (fitted points only).
    pe_error: dict[str, float]
    array_error: dict[str, float]
    #: target -> largest seed-to-seed spread ``(max - min) / median`` of a calibrated point.
    spread: dict[str, float]
    meta: dict[str, Any] = field(default_factory=dict)

    def uses_dsp(self, kind: str, target: str, *, lut_only: bool = False) -> bool:
        """Whether the calibrated design has its product in DSPs (mac on ecp5 unless ``lut_only``)."""
        return not lut_only and (kind, target, True) in self.delay

    def fmax_mhz(self, kind: str, bits: int, rows: int, cols: int, target: str, *, lanes: int = 64,
                 lut_only: bool = False) -> float:
        """Fitted Fmax (MHz) of a ``rows x cols`` array of ``kind`` PEs (1x1: one PE) on ``target``;
        ``bits`` is ignored for xnor, which scales with ``lanes``. Raises ValueError for a target
        or kind without place-and-route data."""
        if target not in self.array_factor:
            raise ValueError(f"no Fmax for {target}: hwsim has place-and-route data (nextpnr) for "
                             f"{', '.join(self.array_factor)} only")
        key = (kind, target, self.uses_dsp(kind, target, lut_only=lut_only))
        if key not in self.delay:
            raise ValueError(f"no Fmax calibration for {kind} on {target} in {FMAX_PATH.name}; "
                             f"run benchmarks/calibrate_fmax.py")
        delay = self.delay[key](_fmax_x(kind, bits, lanes))
        return 1000.0 / (delay * (self.array_factor[target] if rows * cols > 1 else 1.0))


def _median(values: Sequence[float]) -> float:
    return float(np.median(values))


def fit_fmax(data: dict[str, Any]) -> FmaxModel:
    """Fit :class:`FmaxModel` to place-and-route ``data`` (the Fmax data file's mapping); rows
    marked ``held_out`` and rows that could not be placed are left out."""
    rows = [r for r in data["fmax"] if r["fmax_mhz"] and not r["held_out"]]

    def key(r: dict[str, Any]) -> tuple[str, str, bool]:
        return r["kind"], r["target"], r["dsp"] > 0

    delay = {}
    for k in {key(r) for r in rows if r["rows"] * r["cols"] == 1}:
        points = [(_fmax_x(r["kind"], r["bits"], r["lanes"]), 1000.0 / _median(r["fmax_mhz"]))
                  for r in rows if key(r) == k and r["rows"] * r["cols"] == 1]
        delay[k] = Fit.least_squares(("x", "1"), points)
    factor, pe_error, array_error, spread = {}, {}, {}, {}
    for target in sorted({r["target"] for r in rows}):
        mine = [r for r in rows if r["target"] == target]
        arrays = [r for r in mine if r["rows"] * r["cols"] > 1]
        ratios = [1000.0 / _median(r["fmax_mhz"]) / delay[key(r)](_fmax_x(r["kind"], r["bits"], r["lanes"]))
                  for r in arrays]
        factor[target] = sum(ratios) / len(ratios) if ratios else 1.0
        spread[target] = max((max(r["fmax_mhz"]) - min(r["fmax_mhz"])) / _median(r["fmax_mhz"]) for r in mine)
    model = FmaxModel(delay, factor, pe_error, array_error, spread,
                      meta={k: data[k] for k in ("tool", "pnr_tool", "command", "date", "devices")})
    for r in rows:
        got = model.fmax_mhz(r["kind"], r["bits"], r["rows"], r["cols"], r["target"], lanes=r["lanes"],
                             lut_only=r["lut_only"])
        errors = pe_error if r["rows"] * r["cols"] == 1 else array_error
        median = _median(r["fmax_mhz"])
        errors[r["target"]] = max(errors.get(r["target"], 0.0), abs(got - median) / median)
    return model


@functools.cache
def load_fmax_model(path: Path = FMAX_PATH) -> FmaxModel:
    """The Fmax model fitted to ``path`` (cached: read and fitted once per process)."""
    return fit_fmax(json.loads(path.read_text()))


def fmax_mhz(kind: str, bits: int, rows: int, cols: int, target: str, *, lanes: int = 64,
             lut_only: bool = False) -> float:
    """Fitted Fmax (MHz) of hwsim's ``rows x cols`` array of ``kind`` on ``target`` (see
    :meth:`FmaxModel.fmax_mhz`)."""
    return load_fmax_model().fmax_mhz(kind, bits, rows, cols, target, lanes=lanes, lut_only=lut_only)


if __name__ == "__main__":
    m = load_model()
    print(f"{m.meta['tool']}, {m.meta['date']}: {m.meta['command']}")
    for (kind, target, dsp, r), f in sorted(m.fits.items()):
        print(f"{kind:6} {target:6} {'dsp' if dsp else 'lut':4} {r:6} max err {f.max_error:6.1%}  {f}")
    for (kind, target, dsp, r), f in sorted(m.in_array.items()):
        print(f"{kind:6} {target:6} {'dsp' if dsp else 'lut':4} {r:6} in array: {f} (x = PEs); "
              f"whole-array max err {m.array_error[(kind, target, dsp, r)]:.1%}")
    fm = load_fmax_model()
    print(f"Fmax: {fm.meta['pnr_tool']}, {fm.meta['date']}: {fm.meta['command']}")
    for (kind, target, dsp), f in sorted(fm.delay.items()):
        x = "log2 lanes" if kind == "xnor" else "bits"
        print(f"{kind:6} {target:6} {'dsp' if dsp else 'lut':4} delay ns = {f} (x = {x})")
    for target, factor in fm.array_factor.items():
        print(f"{target:6} array factor {factor:.3f}; Fmax max err PE {fm.pe_error.get(target, 0):.1%}, "
              f"array {fm.array_error.get(target, 0):.1%}; seed spread up to {fm.spread[target]:.1%}")

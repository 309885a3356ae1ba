"""The design space of a sweep: its axes, its points, and the accelerator of each point.

An axis is a tuple of the values a flag takes (``--array 8x8,16x16``); ``(None,)`` leaves that
field to the PE kind's preset and the ``--config`` file, as ``hwsim estimate`` does without the
flag. A :class:`Point` holds one value per axis, and :meth:`Space.accelerator` resolves it with
:func:`hwsim.api.resolve_accelerator` -- the function behind ``hwsim estimate``'s flags -- so a
point costs exactly what ``hwsim estimate`` with the same flags reports.

Widths: xnor is 1 bit, so it takes no ``--bits`` value and has one point per combination of the
other axes; mac, adder and shift take every value of ``--bits`` (checked by
:func:`contract.check_bits`).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

import contract
from contract import PE_KINDS
from hwsim import accelerator as accel
from hwsim.api import resolve_accelerator
from hwsim.errors import ConfigError

__all__ = ["AXES", "Point", "Space", "parse_list"]

#: The axes in the order of a point's fields, each with the flag that sets it.
AXES = {"pe": "--pe", "bits": "--bits", "array": "--array", "dataflow": "--dataflow",
        "sram_kib": "--sram-kib", "dram": "--dram", "clock_mhz": "--clock-mhz", "mapper": "--mapper"}


@dataclass(frozen=True)
class Point:
    """One design: a value per axis (None: the preset's or the config's)."""

    pe: str
    bits: int | None = None
    array: tuple[int, int] | None = None
    dataflow: str | None = None
    sram_kib: float | None = None
    dram: str | None = None
    clock_mhz: float | None = None
    mapper: str | None = None


def parse_list(flag: str, text: str | None, kind: type = str) -> tuple:
    """``a,b,c`` of flag ``flag`` as a tuple of ``kind`` (no repeats; ``(None,)`` when not
    given); ``kind`` int/float must be positive, and ``array`` takes ``RxC``."""
    if text is None:
        return (None,)
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ConfigError(f"{flag} needs at least one value, not {text!r}")
    values = tuple(_parse_value(flag, t, kind) for t in items)
    if len(set(values)) != len(values):
        raise ConfigError(f"{flag} lists a value twice: {text!r}")
    return values


def _parse_value(flag: str, text: str, kind: type) -> object:
    if kind is tuple:  # an array shape
        rows, _, cols = text.lower().partition("x")
        if not (rows.isdigit() and cols.isdigit()) or int(rows) <= 0 or int(cols) <= 0:
            raise ConfigError(f"{flag}: malformed array {text!r}; give ROWSxCOLS with positive sizes, e.g. 16x16")
        return int(rows), int(cols)
    if kind is str:
        return text
    try:
        value = kind(text)
    except ValueError:
        value = 0
    if not 0 < value < float("inf"):
        noun = "positive integers" if kind is int else "positive numbers"
        raise ConfigError(f"{flag} takes {noun}, not {text!r}")
    return value


@dataclass(frozen=True)
class Space:
    """The axes of a sweep (tuples of values, ``(None,)`` for the default) and the fixed choices
    every point shares: ``config`` (a YAML diff on each preset) and ``tech``."""

    pe: tuple[str, ...] = PE_KINDS
    bits: tuple[int | None, ...] = (None,)
    array: tuple[tuple[int, int] | None, ...] = (None,)
    dataflow: tuple[str | None, ...] = (None,)
    sram_kib: tuple[float | None, ...] = (None,)
    dram: tuple[str | None, ...] = (None,)
    clock_mhz: tuple[float | None, ...] = (None,)
    mapper: tuple[str | None, ...] = (None,)
    config: str | Path | None = None
    tech: str | None = None

    @classmethod
    def from_flags(cls, *, pe: str | None = None, bits: str | None = None, array: str | None = None,
                   dataflow: str | None = None, sram_kib: str | None = None, dram: str | None = None,
                   clock_mhz: str | None = None, mapper: str | None = None,
                   config: str | Path | None = None, tech: str | None = None) -> Space:
        """The space of the comma-separated flag values; ConfigError names a bad one."""
        pes = PE_KINDS if pe is None else parse_list("--pe", pe)
        unknown = [p for p in pes if p not in PE_KINDS]
        if unknown:
            raise ConfigError(f"--pe: unknown PE kind {unknown[0]!r}; choose from {', '.join(PE_KINDS)}")
        flows, mappers = parse_list("--dataflow", dataflow), parse_list("--mapper", mapper)
        for flag, values, known in (("--dataflow", flows, accel.DATAFLOWS), ("--mapper", mappers, accel.MAPPERS)):
            bad = [v for v in values if v is not None and v not in known]
            if bad:
                raise ConfigError(f"{flag}: unknown value {bad[0]!r}; choose from {', '.join(known)}")
        space = cls(pe=pes, bits=parse_list("--bits", bits, int), array=parse_list("--array", array, tuple),
                    dataflow=flows, sram_kib=parse_list("--sram-kib", sram_kib, float),
                    dram=parse_list("--dram", dram), clock_mhz=parse_list("--clock-mhz", clock_mhz, float),
                    mapper=mappers, config=config, tech=tech)
        space.check()
        return space

    def widths(self, pe: str) -> tuple[int | None, ...]:
        """The ``bits`` values of PE kind ``pe``: none for xnor (always 1 bit), the others all but 1."""
        return (None,) if pe == "xnor" else tuple(b for b in self.bits if b != 1)

    def check(self) -> None:
        """Every width suits a chosen kind and every kind gets one; every value of every axis
        resolves and every table loads, so a bad value fails before any work."""
        for b in self.bits:
            if b == 1 and "xnor" not in self.pe:
                raise ConfigError("--bits 1 is the xnor datapath's width; add xnor to --pe or drop 1")
            if b not in (None, 1):
                try:
                    contract.check_bits("mac", b)
                except contract.ContractError as exc:
                    raise ConfigError(f"--bits {b}: {exc}") from None
        empty = [p for p in self.pe if not self.widths(p)]
        if empty:
            raise ConfigError(f"--bits leaves {empty[0]} without a width; add one of 2..{contract.MODEL_BITS[1]}")
        base = Point(self.pe[0], self.widths(self.pe[0])[0])
        for name in list(AXES)[2:]:
            for value in getattr(self, name):
                self.accelerator(dataclasses.replace(base, **{name: value}))
        from cost_models.memory import load_dram
        from cost_models.tech import load_technology

        for table, load in ((self.tech, load_technology), *((d, load_dram) for d in self.dram)):
            if table is not None:
                try:
                    load(table)
                except ValueError as exc:
                    raise ConfigError(str(exc)) from None

    def grid(self) -> list[Point]:
        """Every point of the space, PE kind slowest, then the axes in :data:`AXES` order."""
        rest = [getattr(self, name) for name in list(AXES)[2:]]
        return [Point(pe, bits, *values) for pe in self.pe for bits in self.widths(pe)
                for values in itertools.product(*rest)]

    def random(self, samples: int, seed: int) -> list[Point]:
        """``samples`` distinct points of :meth:`grid`, drawn uniformly (all of them when the grid
        is smaller), in grid order."""
        points = self.grid()
        if samples >= len(points):
            return points
        chosen = np.random.default_rng(seed).choice(len(points), size=samples, replace=False)
        return [points[i] for i in sorted(chosen)]

    def accelerator(self, point: Point) -> accel.Accelerator:
        """The accelerator of ``point``: :func:`hwsim.api.resolve_accelerator` on the flags
        ``hwsim estimate`` would be given."""
        values = {f.name: getattr(point, f.name) for f in fields(point)}
        return resolve_accelerator(config=self.config, tech=self.tech, **values)

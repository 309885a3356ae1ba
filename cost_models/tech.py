"""Technology tables: loading, validation, and the integer add/multiply primitives.

A technology table is a YAML file of groups (``add``, ``mult``, ``gates``, ``sram``, ...). Each
group, or each entry inside it, carries a ``source`` string; derived numbers are also marked
``assumption: true`` and their ``source`` gives the derivation. The shipped tables live in
``cost_models/data``; users pass a table name or a path (see :func:`load_technology`).

Bit-width scaling of the integer primitives
-------------------------------------------
A table gives adders and multipliers at a few widths (Horowitz: 8 and 32 bits). Between two given
widths the cost is interpolated on a log-log line, ``cost(b) = cost(b0) * (b / b0) ** e`` with
``e = log(cost(b1) / cost(b0)) / log(b1 / b0)``; outside the given range the nearest segment's law
is extrapolated. The fit reproduces every table point exactly. The exponents it yields from
Horowitz's table agree with the textbook complexities (ripple-carry adder: n full adders, linear;
array multiplier: n^2 partial-product cells, quadratic; e.g. Weste & Harris, *CMOS VLSI Design*,
4th ed., ch. 11): add energy 0.87, add area 0.96, multiply energy 1.98, multiply area 1.82.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DATA_DIR = Path(__file__).resolve().parent / "data"
#: Appended to a table's name: apply its calibrated activity factors (:func:`load_technology`).
ACTIVITY_SUFFIX = "+activity"


@dataclass(frozen=True)
class Primitive:
    """Energy of one operation (pJ) and area of one instance (um^2) of a circuit block."""

    energy_pj: float
    area_um2: float


@dataclass(frozen=True)
class Technology:
    """A validated technology table.

    ``add`` and ``mult`` are ``(bits, Primitive)`` points sorted by width; ``gates`` maps
    ``full_adder``, ``xor2``, ``mux2`` and ``dff`` (one register bit per clock) to their costs;
    ``sram_read_pj`` holds ``(capacity_kib, energy_pj)`` points of one ``sram_width_bits`` access;
    ``leakage_logic_nw_per_um2`` and ``leakage_sram_nw_per_um2`` are the static power densities of
    logic and SRAM macros, ``sram_sleep_fraction`` the share of its leakage an SRAM bank keeps in its
    low-leakage state (all ``None`` when the table has no ``leakage`` group). DRAM is its own chip
    and has its own tables (:func:`cost_models.memory.load_dram`). ``sources`` lists where every
    number comes from.
    """

    name: str
    path: str
    description: str
    add: tuple[tuple[int, Primitive], ...]
    mult: tuple[tuple[int, Primitive], ...]
    float_ops: tuple[tuple[str, Primitive], ...]
    gates: tuple[tuple[str, Primitive], ...]
    sram_width_bits: int
    sram_read_pj: tuple[tuple[float, float], ...]
    sram_bitcell_um2: float
    sram_array_efficiency: float
    leakage_logic_nw_per_um2: float | None
    leakage_sram_nw_per_um2: float | None
    sram_sleep_fraction: float | None
    sources: str
    gate_level: tuple[tuple[str, Primitive], ...] = ()
    dff_clock_fraction: float | None = None
    activity_factors: tuple[tuple[str, float, float], ...] = ()
    apply_activity: bool = False

    def gate(self, name: str) -> Primitive:
        """The cost of gate ``name`` (``full_adder``, ``xor2``, ``mux2``, ``dff``, and the
        ``gate_level`` group's ``and2`` and ``inv`` when the table has it)."""
        return dict(self.gates + self.gate_level)[name]

    def activity_factor(self, pe: str, *, zero: bool = False) -> float:
        """The calibrated switching-activity factor of PE kind ``pe`` (its ``activity`` entry:
        gate-level logic energy on real layers over the analytic energy; ``zero``: of operand
        pairs with a zero activation), 1.0 when the table has none."""
        for kind, factor, zero_factor in self.activity_factors:
            if kind == pe:
                return zero_factor if zero else factor
        return 1.0

    def logic_scale(self, pe: str) -> float:
        """What the datapath models multiply a PE kind's logic energy by: its activity factor when
        the table was loaded as ``<name>+activity`` (:func:`load_technology`), else 1.0."""
        return self.activity_factor(pe) if self.apply_activity else 1.0


def loglog_interp(points: Sequence[tuple[float, float]], x: float) -> float:
    """Piecewise power law through ``points`` (sorted by x), extended with the nearest segment.

    A table point is returned as given, so published numbers come back exactly.
    """
    for px, py in points:
        if x == px:
            return py
    i = 1
    while i < len(points) - 1 and x > points[i][0]:
        i += 1
    (x0, y0), (x1, y1) = points[i - 1], points[i]
    exponent = math.log(y1 / y0) / math.log(x1 / x0)
    return y0 * (x / x0) ** exponent


def _width(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
        raise ValueError(f"`bits` must be a positive integer, not {bits!r}")
    return bits


def add_energy_pj(tech: Technology, bits: int) -> float:
    """Energy of one ``bits``-wide integer addition (log-log scaling, see the module docstring)."""
    return loglog_interp([(b, p.energy_pj) for b, p in tech.add], _width(bits))


def mult_energy_pj(tech: Technology, bits: int) -> float:
    """Energy of one ``bits`` x ``bits`` integer multiplication."""
    return loglog_interp([(b, p.energy_pj) for b, p in tech.mult], _width(bits))


def add_area_um2(tech: Technology, bits: int) -> float:
    """Area of one ``bits``-wide integer adder."""
    return loglog_interp([(b, p.area_um2) for b, p in tech.add], _width(bits))


def mult_area_um2(tech: Technology, bits: int) -> float:
    """Area of one ``bits`` x ``bits`` integer multiplier."""
    return loglog_interp([(b, p.area_um2) for b, p in tech.mult], _width(bits))


# --- loading and validation -------------------------------------------------------------------

_COST = ("energy_pj", "area_um2")


@dataclass(frozen=True)
class _Group:
    """Schema of one table group: fixed entries, or entries named by ``pattern``, plus scalars."""

    entries: dict[str, tuple[str, ...]]
    pattern: str = ""
    hint: str = ""
    pattern_fields: tuple[str, ...] = ()
    min_pattern: int = 0
    scalars: tuple[str, ...] = ()
    optional: bool = False


_SCHEMA = {
    "add": _Group({}, r"int([0-9]+)", "int<bits>", _COST, 2),
    "mult": _Group({}, r"int([0-9]+)", "int<bits>", _COST, 2),
    "float": _Group({}, r"fp[0-9]+_(?:add|mult)", "fp<bits>_add", _COST, optional=True),
    "gates": _Group({g: _COST for g in ("full_adder", "xor2", "mux2", "dff")}),
    "sram": _Group({}, r"kib([0-9]+(?:\.[0-9]+)?)", "kib<capacity>", ("energy_pj",), 2, scalars=("width_bits",)),
    "sram_area": _Group({"bitcell": ("area_um2",), "periphery": ("array_efficiency",)}),
    "leakage": _Group({"logic": ("nw_per_um2",), "sram": ("nw_per_um2",), "sram_sleep": ("fraction",)},
                      optional=True),
    "gate_level": _Group({"and2": _COST, "inv": _COST, "dff_clock": ("fraction",)}, optional=True),
    "activity": _Group({}, r"mac|adder|xnor|shift", "<pe kind>", ("factor", "zero_factor"), optional=True),
}
_TOP_STRINGS = ("name", "description")
_INTEGER_KEYS = ("width_bits",)


class _Checker:
    """Walks a parsed table and raises one-line ValueErrors naming the file and the key."""

    def __init__(self, label: str, kind: str = "tech") -> None:
        self.label, self.kind = label, kind
        self.sources: list[str] = []

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{self.kind} table {self.label!r}: {what}")

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"`{key}` must be a mapping, not {value!r}")
        return value

    def number(self, value: Any, key: str) -> float:
        if key.rsplit(".", 1)[-1] in _INTEGER_KEYS:
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise self.fail(f"`{key}` must be a positive integer, not {value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise self.fail(f"`{key}` must be a positive number, not {value!r}")
        return value

    def provenance(self, node: dict[str, Any], key: str, inherited: str | None) -> str | None:
        """Check ``source``/``assumption`` of ``node``; return its source (or the inherited one)."""
        if "assumption" in node and not isinstance(node["assumption"], bool):
            raise self.fail(f"`{key}.assumption` must be true or false, not {node['assumption']!r}")
        if "source" not in node:
            return inherited
        source = node["source"]
        if not isinstance(source, str) or not source.strip():
            raise self.fail(f"`{key}.source` must be a non-empty string, not {source!r}")
        return " ".join(source.split()) + (" [assumption]" if node.get("assumption") else "")

    def entry(self, node: Any, key: str, fields: tuple[str, ...], inherited: str | None) -> dict[str, float]:
        node = self.mapping(node, key)
        for name in node:
            if name not in (*fields, "source", "assumption"):
                raise self.fail(f"unknown key `{key}.{name}`")
        source = self.provenance(node, key, inherited)
        if source is None:
            raise self.fail(f"`{key}` has no `source`; every number needs one (on it or its group)")
        values = {}
        for name in fields:
            if name not in node:
                raise self.fail(f"missing key `{key}.{name}`")
            values[name] = self.number(node[name], f"{key}.{name}")
        self.sources.append(f"{key}: {source}")
        return values

    def group(self, node: Any, key: str, schema: _Group) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        """Validated ``(entries, scalars)`` of one group."""
        node = self.mapping(node, key)
        source = self.provenance(node, key, None)
        entries, scalars = {}, {}
        for name, value in node.items():
            if name in ("source", "assumption"):
                continue
            if name in schema.scalars:
                if source is None:
                    raise self.fail(f"`{key}` has no `source`; every number needs one")
                scalars[name] = self.number(value, f"{key}.{name}")
            elif name in schema.entries:
                entries[name] = self.entry(value, f"{key}.{name}", schema.entries[name], source)
            elif schema.pattern and re.fullmatch(schema.pattern, str(name)):
                entries[name] = self.entry(value, f"{key}.{name}", schema.pattern_fields, source)
            else:
                raise self.fail(f"unknown key `{key}.{name}`")
        for name in (*schema.entries, *schema.scalars):
            if name not in entries and name not in scalars:
                raise self.fail(f"missing key `{key}.{name}`")
        found = len(entries) - len(schema.entries)
        if found < schema.min_pattern:
            raise self.fail(f"`{key}` needs at least {schema.min_pattern} entries named "
                            f"`{schema.hint}`, found {found}")
        if scalars:
            self.sources.append(f"{key} ({', '.join(scalars)}): {source}")
        return entries, scalars


def _points(entries: dict[str, dict[str, float]], pattern: str, key: str, checker: _Checker) -> list:
    """``(width or capacity, fields)`` sorted; duplicate widths (``int8`` and ``int08``) rejected."""
    points: dict[float, dict[str, float]] = {}
    for name, fields in entries.items():
        x = float(re.fullmatch(pattern, name).group(1))
        if x <= 0 or x in points:
            raise checker.fail(f"`{key}.{name}` repeats or has a zero width or capacity")
        points[x] = fields
    return sorted(points.items())


def _parse(data: Any, label: str, path: Path) -> Technology:
    check = _Checker(label)
    if not isinstance(data, dict):
        raise check.fail("must be a YAML mapping of groups (add, mult, gates, sram, sram_area, dram)")
    for key in data:
        if key == "dram":
            raise check.fail("`dram` is not part of a technology table: DRAM is its own chip, chosen "
                             "with the accelerator's `memory.dram` (ddr3 is Horowitz's 1.95 nJ per 64 bits)")
        if key not in _SCHEMA and key not in _TOP_STRINGS:
            raise check.fail(f"unknown key `{key}`")
    for key in _TOP_STRINGS:
        if key in data and not isinstance(data[key], str):
            raise check.fail(f"`{key}` must be a string, not {data[key]!r}")
    groups = {}
    for key, schema in _SCHEMA.items():
        if key not in data:
            if not schema.optional:
                raise check.fail(f"missing key `{key}`")
            groups[key] = ({}, {})
            continue
        groups[key] = check.group(data[key], key, schema)

    def int_points(key: str) -> tuple[tuple[int, Primitive], ...]:
        pts = _points(groups[key][0], _SCHEMA[key].pattern, key, check)
        return tuple((int(b), Primitive(f["energy_pj"], f["area_um2"])) for b, f in pts)

    efficiency = groups["sram_area"][0]["periphery"]["array_efficiency"]
    if efficiency > 1:
        raise check.fail(f"`sram_area.periphery.array_efficiency` must be at most 1, not {efficiency!r}")
    sram_entries, sram_scalars = groups["sram"]
    leakage = {name: next(iter(f.values())) for name, f in groups["leakage"][0].items()}
    if leakage.get("sram_sleep", 0) > 1:
        raise check.fail(f"`leakage.sram_sleep.fraction` must be at most 1, not {leakage['sram_sleep']!r}")
    cells = groups["gate_level"][0]
    clock = cells.pop("dff_clock", {}).get("fraction")
    if clock is not None and clock > 1:
        raise check.fail(f"`gate_level.dff_clock.fraction` must be at most 1, not {clock!r}")
    return Technology(
        name=data.get("name", path.stem),
        path=str(path),
        description=data.get("description", ""),
        add=int_points("add"),
        mult=int_points("mult"),
        float_ops=tuple((n, Primitive(**f)) for n, f in groups["float"][0].items()),
        gates=tuple((n, Primitive(**f)) for n, f in groups["gates"][0].items()),
        sram_width_bits=int(sram_scalars["width_bits"]),
        sram_read_pj=tuple((kib, f["energy_pj"]) for kib, f in
                           _points(sram_entries, _SCHEMA["sram"].pattern, "sram", check)),
        sram_bitcell_um2=groups["sram_area"][0]["bitcell"]["area_um2"],
        sram_array_efficiency=efficiency,
        leakage_logic_nw_per_um2=leakage.get("logic"),
        leakage_sram_nw_per_um2=leakage.get("sram"),
        sram_sleep_fraction=leakage.get("sram_sleep"),
        sources="\n".join(check.sources),
        gate_level=tuple((n, Primitive(**f)) for n, f in cells.items()),
        dff_clock_fraction=clock,
        activity_factors=tuple((pe, f["factor"], f["zero_factor"]) for pe, f in groups["activity"][0].items()),
    )


def shipped_tables(folder: Path = DATA_DIR) -> tuple[str, ...]:
    """Names of the tables in ``folder`` (default ``cost_models/data``)."""
    return tuple(sorted(p.stem for p in folder.glob("*.yaml")))


def read_table(name_or_path: str, kind: str, folder: Path = DATA_DIR) -> tuple[Any, str, Path]:
    """The parsed YAML of a shipped table of ``folder`` by name, or of a user's file by path, with
    its label and path; ``kind`` names the table in the one-line ValueError of a missing or bad file."""
    label = str(name_or_path)
    shipped = shipped_tables(folder)
    path = folder / f"{label}.yaml" if label in shipped else Path(label)
    if not path.is_file():
        raise ValueError(f"{kind} table {label!r} not found; pass a shipped table name "
                         f"({', '.join(shipped)}) or a YAML path")
    try:
        stat = path.stat()
        return _parsed_yaml(str(path.resolve()), stat.st_mtime_ns, stat.st_size), label, path
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ValueError(f"{kind} table {label!r} is not valid YAML{where}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{kind} table {label!r} cannot be read: {exc}") from None


@functools.lru_cache(maxsize=64)
def _parsed_yaml(path: str, mtime_ns: int, size: int) -> Any:
    """The YAML in ``path``, parsed once per version of the file (every estimate reads the
    technology and DRAM tables; parsing them was half of a GhostNet estimate). Callers only read it."""
    return yaml.safe_load(Path(path).read_text())


def load_technology(name_or_path: str = "horowitz45") -> Technology:
    """Load and validate a shipped table by name (``"horowitz45"``) or a user's YAML file by path;
    with :data:`ACTIVITY_SUFFIX` appended (``"horowitz45+activity"``), the datapath models scale
    each PE kind's logic energy by the table's calibrated ``activity`` factor.

    Raises ValueError with one line naming the file and the bad key if the table is missing,
    is not YAML, or has missing, unknown, non-numeric or non-positive entries.
    """
    name = str(name_or_path)
    if name.endswith(ACTIVITY_SUFFIX):
        base = load_technology(name[:-len(ACTIVITY_SUFFIX)])
        if not base.activity_factors:
            raise ValueError(f"tech table {base.name!r} has no `activity` group to apply "
                             f"(benchmarks/activity_calibration.py calibrates one)")
        return dataclasses.replace(base, name=base.name + ACTIVITY_SUFFIX, apply_activity=True)
    data, label, path = read_table(name_or_path, "tech")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, label)
    if key not in _TECHNOLOGIES:  # validated once per version of the file (Technology is frozen)
        _TECHNOLOGIES[key] = _parse(data, label, path)
    return _TECHNOLOGIES[key]


_TECHNOLOGIES: dict[tuple[str, int, int, str], Technology] = {}

"""The accelerator description: one frozen object from which every view is derived.

The simulator, the cost models and the RTL generator read the same :class:`Accelerator`: every
knob of the generated hardware is a field here (the ``rtl`` group, ``max_shift``, ``acc_bits``),
and ``hwsim.rtl_plan.top_geometry`` derives the top from it alone. It is built from presets, YAML
files (unknown keys rejected, naming the key) or code, and variants are small diffs with
:func:`dataclasses.replace` (:func:`with_pe` for another PE kind). Every field has a default and a
unit in its name or docstring.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import contract
from contract import DEFAULT_MAX_SHIFT, PE_KINDS
from hwsim.errors import ConfigError

DATAFLOWS = ("os", "ws", "is")
DEPTHWISE_MODES = ("channel_parallel", "gemm")
RESIDENCIES = ("resident", "layerwise")
FUSIONS = ("output_stage", "none")
MAPPERS = ("heuristic", "search")
OBJECTIVES = ("energy", "latency", "edp")


@dataclass(frozen=True)
class ArrayConfig:
    """The PE array: ``rows`` x ``cols`` PEs and the systolic dataflow that maps GEMMs onto it.

    ``dataflow`` is ``os`` (output stationary), ``ws`` (weight stationary) or ``is`` (input
    stationary). ``lanes`` is the number of binary lanes one XNOR PE reduces per cycle (ignored by
    the other PE kinds). ``vector_lanes`` is the width of the vector unit that runs pooling,
    element-wise, activation and normalization layers (0 means ``cols``).

    ``aux_rows`` x ``aux_cols`` is the geometry of each auxiliary array: the array of another PE
    kind that runs the layers a converted network keeps at full precision (the stem and the
    classifier of an AdderNet, BNN or DeepShift network), with the main array's dataflow. 0 takes
    the default, ``ceil(rows / 4)`` x ``cols``: a quarter of the main array's PEs, sized for
    those few layers rather than a copy of the main array (an assumption: the seed papers run
    them on the host or a small MAC unit and give no size). The quarter keeps all the columns
    because the classifier is a matrix-vector product: each weight is used once, and an ``os``
    or ``ws`` array takes in one weight per column per cycle, so its speed is set by ``cols``.

    ``fold_overlap``: consecutive folds are pipelined through a shadow register per PE (the
    accumulator drains, or the next stationary block preloads, while the next fold computes), as
    TPU- and Gemmini-style arrays do, so a fold costs ``max(T, rows)`` cycles and fill and drain
    are paid once per layer (:mod:`hwsim.dataflow`); false is the naive array (and the generated
    RTL top), every fold paying its own fill and drain.

    ``depthwise``: how grouped convolutions with fewer filters per group than ``cols`` (depthwise
    ones above all) use the array. ``channel_parallel`` maps the groups across the columns, each
    column fed its own channel's input from a ``kw``-tap shift register per row at the array
    edge (the depthwise mode of DW-capable accelerators such as Eyeriss v2's and the dual-engine
    DSC designs; extra area: one input register and a 2:1 mux per PE, and the shift registers);
    ``os`` and ``ws`` only, ``is`` keeps ``gemm``. ``gemm`` runs every group as its own GEMM
    (one column busy: what SCALE-Sim and a plain systolic array do).

    ``dataflows``: the dataflows a flexible array can switch between per layer, which
    ``schedule.mapper: search`` chooses from (empty, the default: ``dataflow`` only; when given it
    must include ``dataflow``, which the fixed mapper and the generated RTL use).
    """

    rows: int = 16
    cols: int = 16
    dataflow: str = "os"
    lanes: int = 64
    vector_lanes: int = 0
    aux_rows: int = 0
    aux_cols: int = 0
    fold_overlap: bool = True
    depthwise: str = "channel_parallel"
    dataflows: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.dataflows, list):  # as YAML gives it; a tuple keeps the config hashable
            object.__setattr__(self, "dataflows", tuple(self.dataflows))


@dataclass(frozen=True)
class MemoryConfig:
    """On-chip buffers (one SRAM per operand) and the DRAM interface.

    Capacities are in KiB, the SRAM port width in bits, the DRAM bandwidth in GB/s (10^9 bytes).
    ``dram`` is the DRAM generation that prices every bit moved (pJ/bit): a table shipped in
    ``cost_models/data/dram`` (``ddr3``, ``ddr4``, ``lpddr4``, ``lpddr5``, ``hbm2``) or a path to a
    user's YAML table. The default, LPDDR4, is the DRAM of an edge inference accelerator; its
    LPDDR4-3200 x32 interface (3200 MT/s x 4 bytes) is the 12.8 GB/s bandwidth default. ``ddr3``
    is the Horowitz figure hwsim used before.

    ``sram_bank_kib``: each SRAM is built of banks of this many KiB, and an access costs what one
    bank's does (the technology table's energy at the bank's capacity), as accelerator scratchpads
    are banked: Gemmini's default 256 KiB scratchpad is 4 banks of 64 KiB (ucb-bar/gemmini,
    ``GemminiConfigs.defaultConfig``: ``sp_capacity = 256 KiB``, ``sp_banks = 4``), hence the 64
    KiB default. The energy of selecting a bank and of the longer wires of a larger macro is not
    modelled (an assumption; it makes large buffers slightly cheap). 0: one monolithic array,
    priced at its whole capacity (Horowitz's cache figures; hwsim before issue 15).

    ``global_buffer_kib``: one SRAM shared by all operands (a global buffer, as Eyeriss's 108 KB
    GLB or the TPU's unified buffer) instead of one per operand: a layer's ifmap, weight and
    partial-sum tiles together fit it, and the activations kept between layers share it. 0 (the
    default): the three per-operand SRAMs above; when set, those are not used by the cost model.
    The generated RTL top has one buffer per operand and refuses a global buffer.
    """

    ifmap_sram_kib: float = 64.0
    weight_sram_kib: float = 64.0
    ofmap_sram_kib: float = 64.0
    sram_width_bits: int = 64
    sram_bank_kib: float = 64.0
    global_buffer_kib: float = 0.0
    dram_bandwidth_gbps: float = 12.8
    dram: str = "lpddr4"


@dataclass(frozen=True)
class ScheduleConfig:
    """How layers follow one another (:mod:`hwsim.schedule`).

    ``residency``: ``resident`` keeps a tensor in on-chip activation storage until its last
    reader has run, as far as it fits (the rest spills to DRAM); ``layerwise`` sends every
    stored tensor to DRAM and back. ``fusion``: ``output_stage`` runs activation, batch norm,
    residual add, element-wise multiply and pooling in the producer's output stage, overlapped
    with it; ``none`` runs act/norm serially with an SRAM pass and everything else on its own.
    ``activation_kib``: activation storage in KiB (0: ``memory.ifmap_sram_kib +
    memory.ofmap_sram_kib``). ``weights_on_chip``: keep all weights in the weight SRAM, loaded
    before inference (no weight DRAM traffic), when their total fits it. ``depth_first``: with
    ``resident``, a tensor whose producer and readers can run a band of rows at a time, with all
    their weights held in the weight SRAM, takes only that band of activation storage (the
    fused-layer / line-buffered schedule of Alwani et al., "Fused-layer CNN accelerators",
    MICRO 2016, and of DeFiNES, HPCA 2023), so large early feature maps stay on chip; false
    keeps every stored tensor whole.

    ``mapper``: how each compute layer is tiled and ordered: ``heuristic`` (the fast default: least
    DRAM traffic, then fewest cycles, :mod:`hwsim.mapping`) or ``search`` (tile sizes, loop order
    and, with ``array.dataflows``, dataflow searched per layer for the least ``objective``:
    ``energy``, ``latency`` or ``edp``, the product of the two; :mod:`hwsim.mapper`).
    """

    residency: str = "resident"
    fusion: str = "output_stage"
    activation_kib: float = 0.0
    weights_on_chip: bool = False
    depth_first: bool = True
    mapper: str = "heuristic"
    objective: str = "energy"


@dataclass(frozen=True)
class RtlConfig:
    """Knobs of the generated accelerator top that the cost model does not read.

    ``max_steps`` is the longest fold (kernel positions x channel words) the accumulators and
    the weight buffer are sized for (0: 4608, or fewer when the weight buffer holds fewer
    words); ``bias_bits`` the width of the requantization bias; ``dim_bits`` the width of the
    descriptor's size fields (channels, height, width up to ``2**dim_bits - 1``).
    ``memory_latency`` picks what ``--timing rtl`` times: 0 (default) the layer top streamed by a
    host at full rate (``hwsim cosim --layer``); N >= 1 the network accelerator fetching
    everything over its AXI4 port from a memory that answers each read burst and write N cycles
    later (``hwsim cosim --network --latency N``; :mod:`hwsim.rtl_sequence`).
    """

    max_steps: int = 0
    bias_bits: int = 32
    dim_bits: int = 12
    memory_latency: int = 0
    bus_bits: int = 64


@dataclass(frozen=True)
class PowerConfig:
    """Static power and clock gating.

    ``leakage``: charge the technology table's leakage power (per um^2 of logic and SRAM) of the
    whole chip for the whole latency (false: dynamic energy only, as before issue 15).
    ``clock_gating``: the fraction (0 to 1) of an idle PE's register clock energy that gating
    saves. Registers are charged per useful op plus ``(1 - clock_gating)`` x idle PE-cycles
    (every PE of every array that is not doing a useful op, stalls included) x register bits x
    flip-flop energy; 1.0 is perfect gating (the model before issue 15), 0 clocks every register
    every cycle. The default 0.9 is an assumption: one clock-gating cell per PE enabled by its
    valid operand, the 10 % left for the gating cell and the clock branch up to it.
    ``sram_bank_gating``: while a layer runs, SRAM banks (``memory.sram_bank_kib``; a whole SRAM
    when 0) that hold none of its buffer tiles (each with the next one loading: twice a tile, at
    most the buffer) nor activations kept on chip sit in their low-leakage state (the technology
    table's ``leakage.sram_sleep``), as a designer of a large scratchpad would have them, so a
    larger buffer leaks only where it is used (false: every bank leaks in full all the time).
    """

    leakage: bool = True
    clock_gating: float = 0.9
    sram_bank_gating: bool = True


@dataclass(frozen=True)
class Accelerator:
    """A PE array of one datapath kind with its buffers, clock and technology.

    ``bits`` is the operand width of activations and weights (1 for ``xnor``); ``acc_bits`` the
    accumulator width (0: derived per layer from the reduction length; the generated top then
    sizes its accumulators for ``rtl.max_steps``). ``max_shift`` is the largest weight shift P of
    the shift datapath (weights ``s * 2**-p``, p in [0, P]); ``max_align`` the largest group
    alignment E of a grouped adder (AdderNet redistribution: the PE computes ``|(x << e) - w|``,
    ``e`` in [0, E], stored with each weight; 0 is the one shared scale). ``tech`` is the name of a
    table shipped in ``cost_models/data`` or a path to a user's YAML table. Layers whose datapath
    differs from ``pe`` (an AdderNet's full-precision first conv) run on an auxiliary array of the
    kind they need (``array.aux_rows`` x ``array.aux_cols``); its area is reported separately.
    ``clock_mhz`` clocks the main array, the vector unit and the buffers; ``aux_clock_mhz`` the
    auxiliary arrays in a clock domain of their own (0: ``clock_mhz``, one domain), so that a
    fast main datapath is not held to the Fmax of the full-precision array beside it.
    """

    pe: str = "mac"
    bits: int = 8
    acc_bits: int = 0
    max_shift: int = DEFAULT_MAX_SHIFT
    max_align: int = 0
    clock_mhz: float = 500.0
    aux_clock_mhz: float = 0.0
    tech: str = "horowitz45"
    array: ArrayConfig = field(default_factory=ArrayConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    rtl: RtlConfig = field(default_factory=RtlConfig)
    power: PowerConfig = field(default_factory=PowerConfig)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def num_pes(self) -> int:
        return self.array.rows * self.array.cols

    @property
    def aux_shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of each auxiliary array (see :class:`ArrayConfig`)."""
        arr = self.array
        return arr.aux_rows or -(-arr.rows // 4), arr.aux_cols or arr.cols

    def pes_of(self, pe: str | None) -> int:
        """PEs of the array that runs datapath ``pe``: the main array, or an auxiliary one."""
        if pe == self.pe:
            return self.num_pes
        rows, cols = self.aux_shape
        return rows * cols

    def array_for(self, pe: str | None) -> Accelerator:
        """This accelerator as a layer of datapath ``pe`` sees it: itself, or with the auxiliary
        array's geometry in place of the main array's when ``pe`` is another compute kind."""
        if pe is None or pe == self.pe:
            return self
        rows, cols = self.aux_shape
        return dataclasses.replace(self, array=dataclasses.replace(self.array, rows=rows, cols=cols),
                                   clock_mhz=self.clock_of(pe))

    def clock_of(self, pe: str | None) -> float:
        """Clock in MHz of the array that runs datapath ``pe`` (None: vector work, on the main
        clock): ``aux_clock_mhz`` for an auxiliary array when set, else ``clock_mhz``."""
        return self.aux_clock_mhz if pe is not None and pe != self.pe and self.aux_clock_mhz else self.clock_mhz

    def sram_kib(self, op: str) -> float:
        """KiB of the SRAM that holds operand ``op`` (``ifmap``, ``weight``, ``ofmap``): its own
        buffer, or the global buffer that all operands share."""
        return self.memory.global_buffer_kib or getattr(self.memory, f"{op}_sram_kib")

    @property
    def srams_kib(self) -> tuple[float, ...]:
        """Capacities of the physical SRAMs: the global buffer, or the three per-operand ones."""
        mem = self.memory
        return (mem.global_buffer_kib,) if mem.global_buffer_kib else (
            mem.ifmap_sram_kib, mem.weight_sram_kib, mem.ofmap_sram_kib)

    @property
    def vector_lanes(self) -> int:
        return self.array.vector_lanes or self.array.cols

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.memory.dram_bandwidth_gbps * 1e3 / self.clock_mhz

    def stored_weight_bits(self, pe: str | None, weight_bits: int) -> int:
        """Bits one weight of a ``pe`` layer of ``weight_bits``-bit weights takes in the buffers and
        DRAM: its width, plus the group alignment field of an adder array that aligns groups
        (``max_align`` > 0, :func:`contract.align_field_bits`)."""
        if pe == "adder" and self.max_align:
            return weight_bits + contract.align_field_bits(self.max_align)
        return weight_bits

    def psum_bits(self, pe: str, bits: int, k: int) -> int:
        """Accumulator / partial-sum width of a ``k``-long reduction on datapath ``pe``.

        ``acc_bits`` when set, else :func:`contract.acc_bits` (the width the generated PE has).
        The mapping sizes the ofmap buffer with it and the cost model sizes the PE with it.
        """
        return self.acc_bits or contract.acc_bits(pe, k, bits, max_shift=self.max_shift,
                                                  max_align=self.max_align,
                                                  lanes=contract.lanes_per_pe(pe, self.array.lanes))

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON and YAML write it (lists, not tuples), which :func:`from_dict`
        reads back to an equal Accelerator."""
        return _plain(dataclasses.asdict(self))


def _positive(name: str, value: Any, kind: type = int, *, zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        ok = ok and float(value).is_integer()
    if not ok or value < 0 or (value == 0 and not zero):
        noun = (("a non-negative integer" if zero else "a positive integer") if kind is int
                else "a non-negative number" if zero else "a positive number")
        raise ConfigError(f"`{name}` must be {noun}, not {value!r}")


def validate(acc: Accelerator) -> None:
    """Raise :class:`ConfigError` naming the first bad field of ``acc`` (what only the generated
    RTL cannot build is checked by :func:`hwsim.rtl_plan.top_geometry`)."""
    if acc.pe not in PE_KINDS:
        raise ConfigError(f"`pe` must be one of {', '.join(PE_KINDS)}, not {acc.pe!r}")
    _positive("bits", acc.bits)
    try:
        contract.check_bits(acc.pe, acc.bits)
    except contract.ContractError as exc:
        raise ConfigError(str(exc)) from None
    _positive("acc_bits", acc.acc_bits, zero=True)
    _positive("max_shift", acc.max_shift, zero=True)
    _positive("max_align", acc.max_align, zero=True)
    if acc.max_align and (acc.pe != "adder" or acc.max_align > contract.MAX_ALIGN_LIMIT):
        raise ConfigError(f"`max_align` of {acc.max_align}: only a grouped adder aligns, by at most "
                          f"{contract.MAX_ALIGN_LIMIT}; set pe: adder or max_align: 0")
    _positive("clock_mhz", acc.clock_mhz, float)
    _positive("aux_clock_mhz", acc.aux_clock_mhz, float, zero=True)
    if not isinstance(acc.tech, str) or not acc.tech:
        raise ConfigError(f"`tech` must be a table name or a YAML path, not {acc.tech!r}")
    arr = acc.array
    _positive("array.rows", arr.rows)
    _positive("array.cols", arr.cols)
    _positive("array.lanes", arr.lanes)
    if arr.vector_lanes != 0:
        _positive("array.vector_lanes", arr.vector_lanes)
    for name in ("aux_rows", "aux_cols"):
        if getattr(arr, name) != 0:
            _positive(f"array.{name}", getattr(arr, name))
    if arr.dataflow not in DATAFLOWS:
        raise ConfigError(f"`array.dataflow` must be one of {', '.join(DATAFLOWS)}, not {arr.dataflow!r}")
    if (not isinstance(arr.dataflows, tuple) or not all(d in DATAFLOWS for d in arr.dataflows)
            or len(set(arr.dataflows)) != len(arr.dataflows)):
        raise ConfigError(f"`array.dataflows` must be a list of distinct dataflows from {', '.join(DATAFLOWS)}, "
                          f"not {arr.dataflows!r}")
    if arr.dataflows and arr.dataflow not in arr.dataflows:
        raise ConfigError(f"`array.dataflows` ({', '.join(arr.dataflows)}) must include `array.dataflow` "
                          f"({arr.dataflow}); add it or change array.dataflow")
    if not isinstance(arr.fold_overlap, bool):
        raise ConfigError(f"`array.fold_overlap` must be true or false, not {arr.fold_overlap!r}")
    if arr.depthwise not in DEPTHWISE_MODES:
        raise ConfigError(f"`array.depthwise` must be one of {', '.join(DEPTHWISE_MODES)}, "
                          f"not {arr.depthwise!r}")
    mem = acc.memory
    for name in ("ifmap_sram_kib", "weight_sram_kib", "ofmap_sram_kib", "dram_bandwidth_gbps"):
        _positive(f"memory.{name}", getattr(mem, name), float)
    _positive("memory.sram_width_bits", mem.sram_width_bits)
    _positive("memory.sram_bank_kib", mem.sram_bank_kib, float, zero=True)
    _positive("memory.global_buffer_kib", mem.global_buffer_kib, float, zero=True)
    if not isinstance(mem.dram, str) or not mem.dram:
        raise ConfigError(f"`memory.dram` must be a DRAM table name or a YAML path, not {mem.dram!r}")
    sch = acc.schedule
    if sch.residency not in RESIDENCIES:
        raise ConfigError(f"`schedule.residency` must be one of {', '.join(RESIDENCIES)}, not {sch.residency!r}")
    if sch.fusion not in FUSIONS:
        raise ConfigError(f"`schedule.fusion` must be one of {', '.join(FUSIONS)}, not {sch.fusion!r}")
    _positive("schedule.activation_kib", sch.activation_kib, float, zero=True)
    if sch.mapper not in MAPPERS:
        raise ConfigError(f"`schedule.mapper` must be one of {', '.join(MAPPERS)}, not {sch.mapper!r}")
    if sch.objective not in OBJECTIVES:
        raise ConfigError(f"`schedule.objective` must be one of {', '.join(OBJECTIVES)}, not {sch.objective!r}")
    for name in ("weights_on_chip", "depth_first"):
        if not isinstance(getattr(sch, name), bool):
            raise ConfigError(f"`schedule.{name}` must be true or false, not {getattr(sch, name)!r}")
    _positive("rtl.max_steps", acc.rtl.max_steps, zero=True)
    _positive("rtl.bias_bits", acc.rtl.bias_bits)
    _positive("rtl.memory_latency", acc.rtl.memory_latency, zero=True)
    if acc.rtl.memory_latency > 10_000:
        raise ConfigError(f"`rtl.memory_latency` must be at most 10000 cycles, not {acc.rtl.memory_latency!r}")
    if acc.rtl.bus_bits not in (64, 128, 256, 512):
        raise ConfigError(f"`rtl.bus_bits` must be 64, 128, 256 or 512, not {acc.rtl.bus_bits!r}")
    dim = acc.rtl.dim_bits
    if isinstance(dim, bool) or not isinstance(dim, int) or not 2 <= dim <= 16:
        raise ConfigError(f"`rtl.dim_bits` must be an integer from 2 to 16, not {acc.rtl.dim_bits!r}")
    for name in ("leakage", "sram_bank_gating"):
        if not isinstance(getattr(acc.power, name), bool):
            raise ConfigError(f"`power.{name}` must be true or false, not {getattr(acc.power, name)!r}")
    gating = acc.power.clock_gating
    if isinstance(gating, bool) or not isinstance(gating, (int, float)) or not 0 <= gating <= 1:
        raise ConfigError(f"`power.clock_gating` must be a number from 0 to 1, not {gating!r}")


def preset(pe: str) -> Accelerator:
    """The default accelerator for a PE kind: 16x16 output-stationary array, int8 (xnor: 1 bit)."""
    if pe not in PE_KINDS:
        raise ConfigError(f"unknown PE kind {pe!r}; choose one of {', '.join(PE_KINDS)}")
    return Accelerator(pe=pe, bits=contract.kind_bits(pe, 8))


def with_pe(acc: Accelerator, pe: str) -> Accelerator:
    """The same accelerator on another datapath, at :func:`contract.kind_bits` operand width."""
    try:
        bits = contract.kind_bits(pe, acc.bits)
    except contract.ContractError as exc:
        raise ConfigError(str(exc)) from None
    return dataclasses.replace(acc, pe=pe, bits=bits)


_GROUPS = {"array": ArrayConfig, "memory": MemoryConfig, "schedule": ScheduleConfig, "rtl": RtlConfig,
           "power": PowerConfig}


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}{key}"
        if key not in names:
            raise ConfigError(f"unknown key `{path}`; valid keys here: {', '.join(sorted(names))}")
        if key in _GROUPS:
            if not isinstance(value, dict):
                raise ConfigError(f"`{path}` must be a mapping of its fields, not {value!r}")
            value = _build(_GROUPS[key], value, f"{path}.")
        kwargs[key] = value
    return cls(**kwargs)


def from_dict(data: dict[str, Any], base: Accelerator | None = None) -> Accelerator:
    """Build an accelerator from a (YAML) mapping; missing fields come from ``base`` or defaults.

    With ``base``, the mapping is a diff on it: nested groups merge field by field.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"an accelerator config must be a mapping of fields, not {type(data).__name__}")
    merged = dataclasses.asdict(base) if base is not None else {}
    for key, value in data.items():
        if key in _GROUPS and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return _build(Accelerator, merged, "")


def read_config(path: str | Path) -> dict[str, Any]:
    """The mapping in accelerator YAML file ``path`` (empty for an empty file), not yet checked."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"accelerator config {str(path)!r} not found; check the path") from None
    except OSError as exc:
        raise ConfigError(f"cannot read accelerator config {str(path)!r}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"accelerator config {str(path)!r} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an accelerator config must be a mapping of fields, not {type(data).__name__}")
    return data


def load(path: str | Path, base: Accelerator | None = None, **overrides: Any) -> Accelerator:
    """Read an accelerator YAML file (see ``configs/*.yaml``) as a diff on ``base``, rejecting
    unknown keys; ``overrides`` replace top-level fields of the file before it is checked."""
    data = {**read_config(path), **overrides}
    try:
        return from_dict(data, base)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _plain(value: Any) -> Any:
    """``value`` with every tuple a list, recursively (what a JSON round trip gives)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value

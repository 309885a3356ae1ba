"""Cost a Workload on an Accelerator: cycles from the mapping, energy and area from cost_models.

Energy is split four ways, per layer and in total:

* ``compute``: datapath logic, ``ops x energy_pj_per_op`` of the datapath the layer needs (for
  XNOR the lane-ops the PEs really perform, ``ceil(K / lanes) * lanes`` per output, so lane waste
  costs energy), and element operations of vector work on the vector unit;
* ``onchip``: PE-internal registers plus every SRAM access of ``sram_width_bits`` at the energy of
  one bank of that buffer (``memory.sram_bank_kib``). Registers are ``ops x register_pj_per_op`` for the useful ops plus
  ``(1 - power.clock_gating) x idle PE-cycles x register_pj_per_pe_cycle`` for every array, where
  an array's idle PE-cycles in a layer are ``rows * cols * layer cycles`` less the PE-cycles doing
  useful ops on it (``ops / ops_per_cycle``; none for an array the layer does not run on);
* ``dram``: every bit moved to or from DRAM, at the ``memory.dram`` table's pJ/bit;
* ``leakage``: the leakage power of the whole chip (:func:`cost_models.memory.leakage_power_nw`
  of the logic blocks' and the SRAMs' area) times the layer's latency,
  ``P_nW * cycles / clock_mhz * 1e-3`` pJ at the clock of the array the layer runs on (0 with
  ``power.leakage`` off).

Area is the main PE array, an auxiliary array of each other datapath some layer needs
(``array.aux_rows`` x ``array.aux_cols``, on which those layers are also mapped), the depthwise
mode's input delivery when a layer uses it, the vector
unit (one multiplier and one adder per lane at the operand width) and the three SRAM buffers.
Layers run one after another, except that vector work fused into a producer's output stage
overlaps it (:mod:`hwsim.schedule`, which also decides which tensors stay on chip between
layers). A workload whose input has a batch of N images (``input_shape[0]``) is costed as one
run over the whole batch (each layer's GEMM is N times taller, so the schedule reads a weight
tile once for all images where it fits); totals are per batch, and :meth:`Report.totals` adds
the per-inference figures.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import contract
import cost_models as cm
from cost_models import fpga as cm_fpga
from cost_models import memory
from hwsim.accelerator import Accelerator
from hwsim.errors import ConfigError, DoesNotFit, HwsimError
from hwsim import schedule
from hwsim.mapper import search_layer
from hwsim.mapping import Flow, Mapping, layer_key, map_layer, uses_channel_parallel
from hwsim.rtl_banks import fold_costs
from hwsim.rtl_plan import LayerPlan, LayerShape, TopGeometry, top_geometry
from hwsim.rtl_sequence import tiles_sequence_cycles
from hwsim.rtl_timing import tile_layer, tiles_cycles
from hwsim.workload import Layer, Workload

_VECTOR_ENERGY_OP = {"maxpool": "max", "avgpool": "add", "add": "add", "mul": "mul",
                     "act": "compare", "norm": "mac", "vector": "add"}
_OPERANDS = ("ifmap", "weight", "ofmap")

#: Cycle models ``estimate`` offers: the analytical mapping, SCALE-Sim's, or the generated RTL's.
TIMINGS = ("model", "scalesim", "rtl")


@dataclass(frozen=True)
class LayerResult:
    """One row of a report. Energies in pJ; ``datapath`` is the unit the layer ran on.

    ``cycles_from`` is the cycle model that gave ``cycles`` (``model``, ``scalesim`` or ``rtl``);
    under ``--timing rtl`` a layer that has no RTL or does not fit the generated top keeps
    ``model``, and ``note`` says why. ``input_from`` / ``output_to``: where the layer's input came
    from and its output went (:class:`hwsim.schedule.Placement`). ``clock_mhz``: the clock of
    the array (or vector unit) it ran on, which turns its cycles into time (0: the accelerator's
    ``clock_mhz``). ``tile_m``, ``tile_k``, ``tile_n``, ``loop_order`` (buffer loops, outer first)
    and ``dataflow``: how the mapper mapped a compute layer (0 and empty for vector work).
    """

    name: str
    op: str
    shape: str
    datapath: str
    on_main_array: bool
    ops: int
    cycles: int
    compute_cycles: int
    stall_cycles: int
    utilization: float
    energy_compute_pj: float
    energy_onchip_pj: float
    energy_dram_pj: float
    energy_leakage_pj: float
    cycles_from: str = "model"
    note: str = ""
    input_from: str = ""
    output_to: str = ""
    clock_mhz: float = 0.0
    tile_m: int = 0
    tile_k: int = 0
    tile_n: int = 0
    loop_order: str = ""
    dataflow: str = ""

    @property
    def energy_pj(self) -> float:
        return self.energy_compute_pj + self.energy_onchip_pj + self.energy_dram_pj + self.energy_leakage_pj


@dataclass(frozen=True)
class Report:
    """Per-layer rows and totals of one network on one accelerator, for a batch of ``batch``
    inferences (rows, cycles and energies are for the whole batch); ``leakage_mw`` is the chip's
    mean static power over the run (SRAM banks asleep as the layers left them)."""

    model: str
    accelerator: Accelerator
    layers: tuple[LayerResult, ...]
    area_um2: dict[str, float]
    op_counts: dict[str, float]
    params: int
    warnings: tuple[str, ...] = field(default_factory=tuple)
    #: FPGA resources by block (pes, skew, in_array, buffers, total) on ``fpga_target``, when asked.
    fpga: dict[str, dict[str, float]] | None = None
    fpga_target: str | None = None
    #: The cycle model the rows come from (see :data:`TIMINGS`).
    timing: str = "model"
    batch: int = 1
    leakage_mw: float = 0.0

    @property
    def cycles(self) -> int:
        return sum(r.cycles for r in self.layers)

    @property
    def latency_ms(self) -> float:
        return sum(r.cycles / (r.clock_mhz or self.accelerator.clock_mhz) for r in self.layers) * 1e-3

    @property
    def inferences_per_s(self) -> float:
        return self.batch * 1e3 / self.latency_ms

    def energy_split_uj(self) -> dict[str, float]:
        """Energy of the whole batch by term (compute, onchip, dram, leakage), in uJ."""
        split = {
            "compute": sum(r.energy_compute_pj for r in self.layers),
            "onchip": sum(r.energy_onchip_pj for r in self.layers),
            "dram": sum(r.energy_dram_pj for r in self.layers),
            "leakage": sum(r.energy_leakage_pj for r in self.layers),
        }
        return {k: v * 1e-6 for k, v in split.items()}

    @property
    def energy_uj(self) -> float:
        return sum(self.energy_split_uj().values())

    @property
    def utilization(self) -> float:
        """MAC-weighted utilization of the compute layers on the arrays."""
        busy = sum(r.compute_cycles * r.utilization for r in self.layers if r.op in ("conv", "linear"))
        total = sum(r.compute_cycles for r in self.layers if r.op in ("conv", "linear"))
        return busy / total if total else 0.0

    def totals(self) -> dict[str, float]:
        """Cycles, latency and energies of the whole batch; ``inferences_per_s`` and the
        ``*_per_inference_uj`` keys per image."""
        split = self.energy_split_uj()
        return {
            "batch": self.batch,
            "cycles": self.cycles,
            "latency_ms": self.latency_ms,
            "inferences_per_s": self.inferences_per_s,
            "utilization": self.utilization,
            "energy_uj": self.energy_uj,
            "energy_compute_uj": split["compute"],
            "energy_onchip_uj": split["onchip"],
            "energy_dram_uj": split["dram"],
            "energy_leakage_uj": split["leakage"],
            "energy_per_inference_uj": self.energy_uj / self.batch,
            **{f"energy_{k}_per_inference_uj": v / self.batch for k, v in split.items()},
            "leakage_mw": self.leakage_mw,
            "area_mm2": sum(self.area_um2.values()) * 1e-6,
            "macs": self.op_counts["macs"],
            "params": self.params,
        }


class _Costs:
    """Memoised technology look-ups for one accelerator (keeps estimate() fast)."""

    def __init__(self, acc: Accelerator) -> None:
        try:
            self.tech = cm.load_technology(acc.tech)
        except ValueError as exc:
            raise HwsimError(str(exc)) from None
        self.acc = acc
        mem = acc.memory
        width = mem.sram_width_bits
        self.sram_pj_per_bit = {}
        for op in _OPERANDS:
            kib = acc.sram_kib(op)
            bank = min(kib, mem.sram_bank_kib or kib)
            self.sram_pj_per_bit[op] = memory.sram_access_energy_pj(self.tech, bank, width) / width
        try:
            self.dram_pj_per_bit = memory.load_dram(mem.dram).energy_pj_per_bit
        except ValueError as exc:
            raise HwsimError(f"memory.dram: {exc}") from None
        self._datapaths: dict[tuple[str, int, int], cm.DatapathCost] = {}

    def datapath(self, pe: str, bits: int, acc_bits: int) -> cm.DatapathCost:
        key = (pe, bits, acc_bits)
        if key not in self._datapaths:
            self._datapaths[key] = cm.datapath_cost(pe, self.tech, bits=bits, acc_bits=acc_bits,
                                                    lanes=self.acc.array.lanes,
                                                    max_shift=self.acc.max_shift,
                                                    max_align=self.acc.max_align)
        return self._datapaths[key]


def _performed_ops(layer: Layer, lanes: int) -> int:
    """Ops the datapath really performs: XNOR PEs always reduce whole words of ``lanes``."""
    if layer.pe != "xnor":
        return layer.macs
    groups, m, k, n = layer.gemm
    return groups * m * n * math.ceil(k / lanes) * lanes


@dataclass(frozen=True)
class _Chip:
    """What a layer pays for the whole chip while it runs: the register energy per PE-cycle of
    each array (by datapath), the idle share that clock gating leaves, and the areas that leak
    (``leaks`` false: ``power.leakage`` off)."""

    register_pj_per_pe_cycle: dict[str, float]
    idle_factor: float
    leaks: bool
    logic_um2: float
    sram_um2: float


def _sram_awake(acc: Accelerator, mapping: Mapping, held_bits: int) -> float:
    """Fraction of the SRAM capacity that leaks in full while a layer runs (``power.sram_bank_gating``):
    the banks of each SRAM holding its buffer tiles (twice a tile: the one in use and the next one
    loading, at most the buffer) and the ``held_bits`` of activations kept on chip, which fill the
    room the ifmap SRAM's tiles leave, then the ofmap SRAM's (one global buffer: all of it)."""
    if not acc.power.sram_bank_gating:
        return 1.0
    names = ("global",) if acc.memory.global_buffer_kib else _OPERANDS
    capacity = {name: kib * 8192 for name, kib in zip(names, acc.srams_kib)}
    used = dict.fromkeys(names, 0)
    for op, bits in mapping.tile_bits.items():
        name = names[0] if len(names) == 1 else op
        used[name] = min(capacity[name], used[name] + 2 * bits)
    for name in (names if len(names) == 1 else ("ifmap", "ofmap")):
        take = min(held_bits, capacity[name] - used[name])
        used[name] += take
        held_bits -= take
    bank_kib = acc.memory.sram_bank_kib
    awake = 0.0
    for name, cap in capacity.items():
        bank = min(cap, bank_kib * 8192) if bank_kib else cap
        awake += min(cap, math.ceil(used[name] / bank) * bank)
    return awake / sum(capacity.values())


#: Where a layer's tensors are when the schedule has not said (the mapper's objective, tests).
_NOWHERE = schedule.Placement("", "")


def _cost_layer(layer: Layer, mapping: Mapping, costs: _Costs, chip: _Chip,
                place: schedule.Placement = _NOWHERE) -> LayerResult:
    """The report row of ``layer`` mapped as ``mapping``, its tensors where ``place`` says."""
    acc = costs.acc
    cycles = mapping.total_cycles
    busy_pe_cycles = 0.0
    if layer.is_compute:
        bits = layer.act_bits
        try:
            cm.check_bits(layer.pe, bits)
        except ValueError as exc:
            raise HwsimError(f"layer {layer.name!r}: {exc}") from None
        dp = costs.datapath(layer.pe, bits, costs.acc.psum_bits(layer.pe, bits, layer.gemm[2]))
        ops = _performed_ops(layer, acc.array.lanes)
        compute = ops * dp.energy_pj_per_op
        registers = ops * dp.register_pj_per_op
        busy_pe_cycles = ops / dp.ops_per_cycle
        main = layer.pe == acc.pe
        datapath = layer.pe if main else f"{layer.pe} (aux)"
    else:
        ops = layer.vector_ops
        compute = ops * memory.vector_op_energy_pj(costs.tech, _VECTOR_ENERGY_OP[layer.op], layer.act_bits)
        registers = 0.0
        main = False
        datapath = "vector"
    if chip.idle_factor:
        for pe, per_pe_cycle in chip.register_pj_per_pe_cycle.items():
            busy = busy_pe_cycles if pe == layer.pe else 0.0
            registers += chip.idle_factor * max(0.0, acc.pes_of(pe) * cycles - busy) * per_pe_cycle
    sram = sum((mapping.sram_read_bits.get(o, 0) + mapping.sram_write_bits.get(o, 0))
               * costs.sram_pj_per_bit[o] for o in _OPERANDS)
    dram = (sum(mapping.dram_read_bits.values()) + sum(mapping.dram_write_bits.values())) * costs.dram_pj_per_bit
    leakage_nw = (memory.leakage_power_nw(costs.tech, chip.logic_um2, chip.sram_um2,
                                          _sram_awake(acc, mapping, place.held_bits)) if chip.leaks else 0.0)
    return LayerResult(
        name=layer.name, op=layer.op, shape=layer.shape, datapath=datapath, on_main_array=main,
        ops=layer.macs if layer.is_compute else ops, cycles=cycles,
        compute_cycles=mapping.compute_cycles, stall_cycles=mapping.stall_cycles,
        utilization=mapping.utilization, energy_compute_pj=compute,
        energy_onchip_pj=registers + sram, energy_dram_pj=dram,
        energy_leakage_pj=leakage_nw * cycles / acc.clock_of(layer.pe) * 1e-3,
        clock_mhz=acc.clock_of(layer.pe), tile_m=mapping.tile[0], tile_k=mapping.tile[1], tile_n=mapping.tile[2],
        loop_order=mapping.loop_order, dataflow=mapping.dataflow,
        input_from=place.input_from, output_to=place.output_to,
    )


def _arrays(workload: Workload, costs: _Costs) -> dict[str, cm.DatapathCost]:
    """The PE of each array, main first, sized for the widest layer it runs."""
    acc = costs.acc
    widest: dict[str, tuple[int, int]] = {}
    for layer in workload.layers:
        if layer.is_compute:
            need = (layer.act_bits, costs.acc.psum_bits(layer.pe, layer.act_bits, layer.gemm[2]))
            old = widest.get(layer.pe, (0, 0))
            widest[layer.pe] = (max(old[0], need[0]), max(old[1], need[1]))
    widest.setdefault(acc.pe, (acc.bits, costs.acc.psum_bits(acc.pe, acc.bits, 1)))
    return {pe: costs.datapath(pe, bits, acc_bits)
            for pe, (bits, acc_bits) in sorted(widest.items(), key=lambda kv: kv[0] != acc.pe)}


def _depthwise_delivery_um2(workload: Workload, costs: _Costs) -> float:
    """Area of the channel-parallel depthwise mode on the main array, when some layer uses it in
    one of the array's dataflows (``array.dataflows``: a flexible array has it for the search to
    use): per PE an input register and a 2:1 mux per bit (its own channel instead of the row's
    broadcast), per column a shift register of ``rows + kw - 1`` taps at the array edge."""
    acc = costs.acc
    arr = acc.array
    users = [layer for layer in workload.layers if layer.is_compute and layer.pe == acc.pe
             and any(uses_channel_parallel(layer, acc, d) for d in arr.dataflows or (arr.dataflow,))]
    if not users:
        return 0.0
    bits = max(layer.act_bits * contract.lanes_per_pe(layer.pe, arr.lanes) for layer in users)
    taps = max(layer.extent[1] for layer in users)
    dff, mux = costs.tech.gate("dff").area_um2, costs.tech.gate("mux2").area_um2
    return bits * (arr.rows * arr.cols * (dff + mux) + arr.cols * (arr.rows + taps - 1) * dff)


def _shadow_registers_um2(arrays: dict[str, cm.DatapathCost], costs: _Costs) -> float:
    """Area of the fold overlap's shadow registers (``array.fold_overlap``): per PE of every array
    one register of the value that changes between folds -- the accumulator for ``os`` (what the
    generated array's drain register holds, :mod:`rtl.array`), the stationary weight or input
    (``bits * lanes``) for ``ws``/``is``."""
    acc = costs.acc
    if not acc.array.fold_overlap:
        return 0.0
    dff = costs.tech.gate("dff").area_um2
    return sum(acc.pes_of(pe) * (dp.acc_bits if acc.array.dataflow == "os" else dp.bits * dp.lanes) * dff
               for pe, dp in arrays.items())


def _area(arrays: dict[str, cm.DatapathCost], costs: _Costs, workload: Workload) -> dict[str, float]:
    """Area per block in um^2: the ``arrays``, the fold overlap's shadow registers, the depthwise
    delivery, the vector unit and the SRAMs."""
    acc = costs.acc
    area = {f"{pe} array" if pe == acc.pe else f"{pe} aux array": acc.pes_of(pe) * dp.area_um2
            for pe, dp in arrays.items()}
    shadow = _shadow_registers_um2(arrays, costs)
    if shadow:
        area["shadow registers"] = shadow
    delivery = _depthwise_delivery_um2(workload, costs)
    if delivery:
        area["depthwise delivery"] = delivery
    vector_bits = max(dp.bits for dp in arrays.values())
    area["vector unit"] = acc.vector_lanes * (cm.add_area_um2(costs.tech, vector_bits)
                                              + cm.mult_area_um2(costs.tech, vector_bits))
    area["sram"] = sum(memory.sram_area_um2(costs.tech, kib) for kib in acc.srams_kib)
    return area


def _chip(arrays: dict[str, cm.DatapathCost], area: dict[str, float], costs: _Costs) -> _Chip:
    power = costs.acc.power
    sram = area["sram"]
    if power.leakage:  # a table without a leakage group fails here, once, before any layer
        try:
            memory.leakage_power_nw(costs.tech, 0.0, 0.0)
        except ValueError as exc:
            raise HwsimError(str(exc)) from None
    return _Chip({pe: dp.register_pj_per_op * dp.ops_per_cycle for pe, dp in arrays.items()},
                 1.0 - power.clock_gating, power.leakage, sum(area.values()) - sram, sram)


def _mean_leakage_mw(rows: tuple[LayerResult, ...]) -> float:
    """Leakage energy over latency: the chip's mean static power, SRAM banks asleep as they were."""
    us = sum(r.cycles / r.clock_mhz for r in rows)
    return sum(r.energy_leakage_pj for r in rows) / us * 1e-3 if us else 0.0


def fpga_resources(acc: Accelerator, target: str) -> dict[str, dict[str, float]]:
    """LUT/FF/carry/DSP/BRAM of ``acc`` built on FPGA family ``target`` (cost_models.fpga): the
    generated output-stationary main array and the three buffers; auxiliary arrays and the vector
    unit have no RTL yet and are not included."""
    mem = acc.memory
    try:
        return cm_fpga.accelerator_resources(
            acc.pe, acc.bits, acc.array.rows, acc.array.cols, target, lanes=acc.array.lanes,
            buffers_kib=acc.srams_kib,
            width_bits=mem.sram_width_bits)
    except ValueError as exc:
        raise HwsimError(str(exc)) from None


def _rtl_timed(mapping: Mapping, layer: Layer, acc: Accelerator, geo: TopGeometry) -> tuple[Mapping, str]:
    """``mapping`` with the cycles of the generated RTL top (:mod:`hwsim.rtl_timing`, the layer's
    tiles summed): ``compute`` is its compute phases, everything else (descriptors, loads,
    drains, stores) counts as stall; and the difference from the model, explained
    (:func:`_rtl_gap`). Raises :class:`~hwsim.errors.DoesNotFit` when the top cannot run ``layer``."""
    tiles = tile_layer(geo, LayerShape.of_layer(layer))
    latency = acc.rtl.memory_latency
    phases = tiles_sequence_cycles(geo, tiles, latency) if latency else tiles_cycles(geo, tiles)
    busy = mapping.utilization * mapping.compute_cycles
    timed = dataclasses.replace(mapping, compute_cycles=phases["compute"],
                                stall_cycles=phases["total"] - phases["compute"],
                                utilization=busy / phases["compute"])
    return timed, _rtl_gap(mapping, phases, layer, acc, geo, tiles[0].plan)


def _rtl_gap(model: Mapping, rtl: dict[str, int], layer: Layer, acc: Accelerator, geo: TopGeometry,
             plan: LayerPlan) -> str:
    """Why the top's cycles differ from the model's, as the report's note: its transfers
    (descriptors, loads, drains, the last store) run outside compute where the model hides all but
    its stalls, and its compute differs where a row tile's steps are fewer than the walk of the
    next one's pixels (with fold overlap), its activation banks serve some steps' rows in more
    than one cycle (:mod:`hwsim.rtl_banks`), the model maps a depthwise conv channel-parallel on
    more columns than the top's ``dw_lanes`` (0: one group per fold) or keeps one tile the top
    must split."""
    transfers = rtl["total"] - rtl["compute"]
    causes = []
    steps = plan.fold_groups * plan.tiles * plan.steps  # a row tile's (of the first tile)
    if geo.fold_overlap and plan.row_tiles > 1 and steps <= geo.rows:
        causes.append(f"row tiles of {steps} steps wait for the walk of the next one's {geo.rows} pixels")
    costs = fold_costs(geo, plan)
    conflicts = int(costs.fold.sum()) * plan.tiles - plan.folds * plan.steps if costs else 0
    if conflicts:
        causes.append(f"activation bank conflicts, {conflicts:,} service cycles more than steps "
                      f"in the first tile's {plan.folds:,} folds")
    dw_lanes = plan.depthwise
    if uses_channel_parallel(layer, acc):
        if not dw_lanes:
            causes.append("one column per depthwise group (model: channel-parallel)")
        elif dw_lanes < min(acc.array.cols, layer.groups):
            causes.append(f"depthwise {dw_lanes} channels a fold, an activation buffer word's "
                          f"(model: {min(acc.array.cols, layer.groups)})")
    if rtl["tiles"] > 1:
        causes.append(f"{rtl['tiles']} tiles, each loaded, filled and drained")
    why = f": {', '.join(causes)}" if causes else ""
    how = (f"fetched over AXI at latency {acc.rtl.memory_latency}" if acc.rtl.memory_latency
           else "one buffer word a cycle")
    return (f"rtl {rtl['total']:,} vs model {model.total_cycles:,} cycles: transfers {transfers:,} outside "
            f"compute, {how}, a tile's loads beside the run before it and its store beside the run after "
            f"(model: DRAM at {acc.dram_bytes_per_cycle:g} B/cycle under compute, "
            f"{model.stall_cycles:,} stall), compute {rtl['compute']:,} vs {model.compute_cycles:,}{why}")


def _rtl_geometry(acc: Accelerator) -> TopGeometry:
    try:
        return top_geometry(acc)
    except ConfigError as exc:
        raise ConfigError(f"--timing rtl: {exc}") from None


def _rtl_sources(rows: tuple[LayerResult, ...], unfit: dict[str, str], gaps: dict[str, str],
                 pe: str) -> tuple[LayerResult, ...]:
    """Mark which rows took the RTL's cycles (noting how they differ from the model's) and why the
    others kept the model's."""
    def source(row: LayerResult) -> LayerResult:
        if not row.on_main_array:
            return dataclasses.replace(row, note=f"no RTL: runs on the {row.datapath} unit, not the {pe} array")
        if row.name in unfit:
            return dataclasses.replace(row, note=f"does not fit the generated top: {unfit[row.name]}")
        return dataclasses.replace(row, cycles_from="rtl", note=gaps[row.name])

    return tuple(source(row) for row in rows)


def _rtl_warnings(off: list[str], unfit: list[tuple[str, str]], pe: str) -> tuple[str, ...]:
    found = []
    if off:
        found.append(f"--timing rtl: {len(off)} layers do not run on the {pe} array "
                     f"(e.g. {off[0]!r}) and keep the analytical model's cycles")
    if unfit:
        name, reason = unfit[0]
        found.append(f"--timing rtl: {len(unfit)} {pe} layers do not fit the generated top and "
                     f"keep the analytical model's cycles (e.g. {name!r}: {reason})")
    return tuple(found)


def _narrow_acc_warnings(workload: Workload, acc: Accelerator) -> tuple[str, ...]:
    """A configured ``acc_bits`` is priced as configured; say which layers' sums it cannot hold."""
    if not acc.acc_bits:
        return ()
    short = []
    for layer in workload.layers:
        if layer.is_compute:
            need = contract.acc_bits(layer.pe, layer.gemm[2], layer.act_bits, max_shift=acc.max_shift,
                                     max_align=acc.max_align,
                                     lanes=contract.lanes_per_pe(layer.pe, acc.array.lanes))
            if need > acc.acc_bits:
                short.append((layer.name, need))
    if not short:
        return ()
    name, need = max(short, key=lambda item: item[1])
    return (f"`acc_bits` of {acc.acc_bits} cannot hold the sums of {len(short)} layers (e.g. "
            f"{name!r} needs {need}); they are costed at {acc.acc_bits} bits, which would overflow: "
            f"raise acc_bits or set it to 0 (exact per layer)",)


def _mapper(costs: _Costs, chip: _Chip, *, scalesim: bool) -> Callable[[Layer, Flow, schedule.Placement], Mapping]:
    """How :func:`estimate` maps a layer with its flow and its placement (the activation bits held
    on chip while it runs): :func:`~hwsim.mapping.map_layer`, or with ``schedule.mapper: search`` for compute
    layers :func:`~hwsim.mapper.search_layer` priced by :func:`_cost_layer`, memoised per layer
    shape, flow and held bits (what the price depends on besides the chip)."""
    acc = costs.acc
    found: dict[tuple, Mapping] = {}

    def choose(layer: Layer, flow: Flow, place: schedule.Placement) -> Mapping:
        if acc.schedule.mapper == "heuristic" or not layer.is_compute:
            return map_layer(layer, acc.array_for(layer.pe), scalesim=scalesim, flow=flow)
        key = (layer_key(layer), flow, place.held_bits)
        if key not in found:
            found[key] = search_layer(layer, acc.array_for(layer.pe), flow,
                                      lambda m: _cost_layer(layer, m, costs, chip, place).energy_pj,
                                      objective=acc.schedule.objective, scalesim=scalesim)
        return found[key]

    return choose


def estimate(workload: Workload, acc: Accelerator, *, timing: str = "model",
             target: str | None = None) -> Report:
    """Map and cost every layer of ``workload`` on ``acc``; ``target`` (an FPGA family) adds the
    accelerator's FPGA resources.

    ``timing`` picks the cycle model: ``model`` (the analytical mapping with DRAM stalls),
    ``scalesim`` (SCALE-Sim v2 compute cycles) or ``rtl`` (the exact cycles of the top that
    ``hwsim rtl generate`` emits for ``acc``, for the layers on the main array that fit it; the
    other layers keep the model's cycles, which a warning says, with the first layer that does
    not fit and why). Dynamic energy is the same for all; leakage and idle-register clocking
    follow the cycles of the chosen model. Raises :class:`ConfigError` for ``rtl`` when
    no top can be generated for ``acc``.
    """
    if timing not in TIMINGS:
        raise HwsimError(f"unknown timing {timing!r}; choose one of {', '.join(TIMINGS)}")
    if timing == "rtl" and acc.schedule.mapper == "search":
        raise ConfigError("--timing rtl takes the cycles of the generated top, which maps every layer its own "
                          "way; use schedule.mapper: heuristic (--mapper heuristic) with it")
    geo = _rtl_geometry(acc) if timing == "rtl" else None
    costs = _Costs(acc)
    flows, places = schedule.plan(workload, acc)
    arrays = _arrays(workload, costs)
    area = _area(arrays, costs, workload)
    chip = _chip(arrays, area, costs)
    choose = _mapper(costs, chip, scalesim=timing == "scalesim")
    mappings, unfit, gaps, model_cycles = [], [], {}, {}
    for layer, flow, place in zip(workload.layers, flows, places):
        mapping = choose(layer, flow, place)
        if geo is not None and layer.is_compute and layer.pe == acc.pe:
            try:
                model_cycles[layer.name] = mapping.total_cycles
                mapping, gaps[layer.name] = _rtl_timed(mapping, layer, acc, geo)
            except DoesNotFit as exc:
                unfit.append((layer.name, str(exc)))
        mappings.append(mapping)
    mappings = schedule.overlap(mappings, flows)
    rows = tuple(_cost_layer(layer, mapping, costs, chip, place)
                 for layer, mapping, place in zip(workload.layers, mappings, places))
    warnings = workload.warnings + _narrow_acc_warnings(workload, acc)
    if geo is not None:
        rows = _rtl_sources(rows, dict(unfit), gaps, acc.pe)
        warnings += _rtl_warnings([r.name for r in rows if not r.on_main_array], unfit, acc.pe)
        timed = [r for r in rows if r.cycles_from == "rtl"]
        if timed:
            rtl_total = sum(r.cycles for r in timed)
            model_total = sum(model_cycles[r.name] for r in timed)
            layers = f"{len(timed)} layer{'s' if len(timed) > 1 else ''}"
            warnings += (f"--timing rtl: the {layers} the generated top runs take {rtl_total:,} "
                         f"cycles on it against {model_total:,} in the model ({rtl_total / model_total:.1f}x; "
                         f"transfers {sum(r.stall_cycles for r in timed):,} of them); each row's note "
                         f"(JSON/CSV) says why",)
    elif timing == "scalesim":
        rows = tuple(dataclasses.replace(r, cycles_from="scalesim") if r.on_main_array else r for r in rows)
    counts: dict[str, float] = {"macs": workload.macs}
    if "xnor" in workload.macs_by_pe():
        counts.update(workload.binary_op_counts())
    return Report(model=workload.name, accelerator=acc, layers=rows, area_um2=area,
                  op_counts=counts, params=workload.params, warnings=warnings,
                  fpga=fpga_resources(acc, target) if target else None, fpga_target=target,
                  timing=timing, batch=workload.input_shape[0] if workload.input_shape else 1,
                  leakage_mw=_mean_leakage_mw(rows))

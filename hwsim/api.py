"""The library face of hwsim: an accelerator and the workloads of a network, as every command needs them.

The command line (``hwsim_cli``), the reports and the co-simulation all resolve accelerators and
load networks through these functions, so ``hwsim estimate``, ``hwsim rtl`` and ``hwsim cosim``
cost, emit and simulate the same hardware:

* :func:`resolve_accelerator`: the PE kind's preset, the YAML config read once as a diff on it,
  then the explicit choices (the command-line flags);
* :func:`workloads`: one network, loaded once, as the workload of several (PE kind, width)
  targets; conversions that :func:`hwsim.extract.retarget` reproduces exactly are retargeted
  instead of converted and traced again;
* :func:`array_clocks` / :func:`clock_for_target`: the clocks an accelerator's arrays close on an
  FPGA family, from hwsim's own place-and-route results (:func:`cost_models.fpga.fmax_mhz`).

Bad input raises :class:`~hwsim.errors.ConfigError` with a one-line message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import contract
from hwsim import accelerator as accel
from hwsim.errors import ConfigError
from hwsim.workload import Workload

__all__ = ["array_clocks", "clock_for_target", "resolve_accelerator", "workloads"]


def resolve_accelerator(*, config: str | Path | None = None, pe: str | None = None,
                        bits: int | None = None, array: tuple[int, int] | None = None,
                        dataflow: str | None = None, clock_mhz: float | None = None,
                        tech: str | None = None, dram: str | None = None, mapper: str | None = None,
                        objective: str | None = None,
                        sram_kib: float | None = None) -> accel.Accelerator:
    """The accelerator of ``pe`` (else the config's kind, else mac): its preset, then ``config``
    (a YAML diff), then every other argument that is not None.

    Without ``bits`` the width follows the kind (:func:`contract.kind_bits`: xnor 1, a config
    written for xnor's 1 bit taken to another kind 8). ``array`` is ``(rows, cols)``; ``dram``
    replaces ``memory.dram``; ``sram_kib`` sizes each of the three per-operand SRAMs (refused
    with a config's ``memory.global_buffer_kib``, which replaces them); ``mapper`` and
    ``objective`` replace ``schedule.mapper`` and ``schedule.objective``.
    """
    data = accel.read_config(config) if config is not None else {}
    kind = pe or data.get("pe") or "mac"
    if kind not in contract.PE_KINDS:
        raise ConfigError(f"unknown PE kind {kind!r}; choose one of {', '.join(contract.PE_KINDS)}")
    changes: dict[str, Any] = {"pe": kind}
    if bits is not None:
        try:
            contract.check_bits(kind, bits)
        except contract.ContractError as exc:
            raise ConfigError(f"--bits {bits}: {exc}") from None
        changes["bits"] = bits
    elif "bits" in data and data.get("pe", kind) != kind:  # the config's width, for its own kind
        changes["bits"] = contract.kind_bits(kind, data["bits"])
    base = accel.preset(kind)
    base = accel.load(config, base, **changes) if config is not None else dataclasses.replace(base, **changes)
    changes = {}
    if clock_mhz is not None:
        changes["clock_mhz"] = clock_mhz
    if tech is not None:
        changes["tech"] = tech
    grid = base.array
    if array is not None:
        grid = dataclasses.replace(grid, rows=array[0], cols=array[1])
    if dataflow is not None:
        grid = dataclasses.replace(grid, dataflow=dataflow)
    memory = base.memory
    if dram is not None:
        memory = dataclasses.replace(memory, dram=dram)
    if sram_kib is not None:
        if memory.global_buffer_kib:
            raise ConfigError(f"--sram-kib {sram_kib:g} sizes the per-operand SRAMs, but the config sets "
                              "memory.global_buffer_kib, which replaces them; drop one of the two")
        memory = dataclasses.replace(memory, ifmap_sram_kib=sram_kib, weight_sram_kib=sram_kib,
                                     ofmap_sram_kib=sram_kib)
    if memory != base.memory:
        changes["memory"] = memory
    chosen = {k: v for k, v in (("mapper", mapper), ("objective", objective)) if v is not None}
    if chosen:
        changes["schedule"] = dataclasses.replace(base.schedule, **chosen)
    return dataclasses.replace(base, array=grid, **changes)


def _is_topology(model: str) -> bool:
    return model.lower().endswith(".csv")


def _is_onnx(model: str) -> bool:
    return model.lower().endswith(".onnx")


def workloads(model: str, targets: Sequence[tuple[str, int]], *, convert_all: bool = False,
              input_shape: tuple[int, ...] | None = None, batch: int | None = None) -> list[Workload]:
    """The workload of network ``model`` on each ``(pe, bits)`` of ``targets``, in order.

    ``model`` is a registry name, ``path/file.py:factory``, ``package.module:factory``, a
    SCALE-Sim topology ``.csv`` or an ONNX/QONNX ``.onnx`` file (:func:`hwsim.onnx_import.onnx_workloads`).
    The network is traced once as built. A network whose trace has layers of a kind other than
    mac (its own, recognised or registered adder/xnor/shift layers) is costed as written: on its
    own kind as built, on any other kind with exactly those layers retargeted
    (:func:`hwsim.extract.retarget`) -- the layers its authors kept real-valued (a Bi-Real
    downsample conv) stay mac, and ``convert_all`` does not apply. A plain network runs as built
    on mac and is converted to any other kind (the first conv and the classifier stay mac unless
    ``convert_all``): retargeted from the trace, except to xnor, which is converted
    (:func:`models.convert.convert`) and traced afresh. Layers off the array run at
    :func:`contract.layer_bits`. ``batch`` replaces
    the batch dimension of the network's input shape (it must agree with ``input_shape``'s).
    """
    if batch is not None and input_shape is not None and input_shape[0] != batch:
        raise ConfigError(f"--batch {batch} contradicts the batch {input_shape[0]} of --input-shape "
                          f"{','.join(map(str, input_shape))}; give one of them")
    if _is_topology(model):
        if batch not in (None, 1):
            raise ConfigError(f"--batch {batch}: a SCALE-Sim topology has no batch dimension")
        from hwsim.topology import read_topology

        return [read_topology(model, pe=pe, bits=contract.layer_bits(pe, bits)) for pe, bits in targets]
    if _is_onnx(model):
        from hwsim.onnx_import import onnx_workloads

        return onnx_workloads(model, targets, convert_all=convert_all, input_shape=input_shape)
    from hwsim.extract import extract, retarget
    from models.convert import convert
    from models.registry import load_model

    try:
        net, shape, entry = load_model(model, input_shape=input_shape)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if batch is not None:
        shape = (batch, *shape[1:])
    keep = not convert_all
    traced: dict[int, Workload] = {}  # the network as built, per width, for retarget

    def as_built(bits: int) -> Workload:
        if bits not in traced:
            traced[bits] = extract(net, shape, bits=bits, name=entry.name)
        return traced[bits]

    made = []
    for pe, bits in targets:
        widths = contract.layer_bits(pe, bits)
        base = next(iter(traced.values()), None) or as_built(widths)
        written = {layer.pe for layer in base.layers if layer.is_compute} - {"mac"}
        if written:  # the authors' own non-mac layers become pe; their mac layers stay mac
            workload = as_built(widths) if written == {pe} else retarget(base, pe, bits)
        elif pe == "mac":
            workload = as_built(widths)
        elif pe == "xnor":  # retarget cannot reproduce xnor's removal of ReLUs (see its docstring)
            try:
                converted = convert(net, pe, input_shape=shape, keep_first_last=keep)
            except ValueError as exc:  # a layer the binary layer class cannot take, named
                raise ConfigError(f"--pe xnor: {exc}") from None
            workload = extract(converted, shape, bits=widths, name=entry.name)
        else:
            workload = retarget(base, pe, bits, keep_first_last=keep)
        made.append(workload)
    return made


def array_clocks(acc: accel.Accelerator, target: str, workload: Workload | None = None, *,
                 lut_only: bool = False) -> dict[str, float]:
    """Fitted Fmax (MHz) on FPGA family ``target`` of each PE array the accelerator runs
    ``workload`` on: the main array (``acc.pe`` at ``acc.bits``, ``rows x cols``) and the
    auxiliary array (``aux_rows x aux_cols``) of every other kind its compute layers need, at
    their widest width. ``lut_only`` keeps every product out of DSPs (the AdderNet FPGA papers
    compare LUT-only arithmetic). Raises :class:`ConfigError` for a family without
    place-and-route data (xc7), naming ``--clock-mhz``.
    """
    from cost_models.fpga import fmax_mhz

    widths = {acc.pe: acc.bits}
    for layer in workload.layers if workload is not None else ():
        if layer.is_compute and layer.pe != acc.pe:
            widths[layer.pe] = max(widths.get(layer.pe, 0), layer.act_bits)
    clocks = {}
    for kind, bits in widths.items():
        rows, cols = (acc.array.rows, acc.array.cols) if kind == acc.pe else acc.aux_shape
        try:
            clocks[kind] = fmax_mhz(kind, bits, rows, cols, target, lanes=acc.array.lanes, lut_only=lut_only)
        except ValueError as exc:
            raise ConfigError(f"--target {target}: {exc}; give --clock-mhz") from None
    return clocks


def clock_for_target(acc: accel.Accelerator, target: str, workload: Workload | None = None, *,
                     lut_only: bool = False) -> accel.Accelerator:
    """``acc`` clocked as it closes on ``target`` (:func:`array_clocks`): ``clock_mhz`` the main
    array's Fmax, ``aux_clock_mhz`` the slowest auxiliary array's, in a clock domain of its own
    (the auxiliary arrays have no generated RTL yet; crossing domains is a FIFO at the buffers).
    The vector unit and the buffers share the main clock and are not calibrated: assumed to meet it."""
    clocks = array_clocks(acc, target, workload, lut_only=lut_only)
    aux = [mhz for kind, mhz in clocks.items() if kind != acc.pe]
    return dataclasses.replace(acc, clock_mhz=clocks[acc.pe], aux_clock_mhz=min(aux) if aux else 0.0)

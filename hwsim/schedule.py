"""The network schedule: which layers fuse, and which tensors stay on chip between layers.

Layers run one after another in workload order. :func:`plan` gives every layer a
:class:`~hwsim.mapping.Flow` (where its inputs come from and how much of its output goes to DRAM,
which :func:`~hwsim.mapping.map_layer` turns into traffic and stalls) and a :class:`Placement`
(the same, as labels for the report).

Fusion (``schedule.fusion``)
----------------------------
A *group* is one anchor layer (a conv/linear, or vector work that cannot fuse) and the vector
layers right after it that read its output stream. With ``output_stage`` a layer joins the group
before it when it is ``act``, ``norm``, ``add``, ``mul``, ``maxpool`` or ``avgpool``, one of its
inputs is the output of the layer just before it (the stream), and the stream is not broadcast:
an element-wise op has the stream's height and width, a pooling reads the stream's height and
width (a reduction or a line-buffered window the output stage computes). Batch norm is folded into
the requantization (a per-channel scale and bias, as ``models/intref.py`` does), so it costs its
vector ops and nothing else. A squeeze-excite multiply does not fuse: its stream is the 1x1 gate,
broadcast over a tensor that had to be stored while the gate was computed. A fused layer reads
its stream in the output stage (no SRAM or DRAM pass), reads its other inputs (a residual's skip)
from wherever they are stored, and its vector cycles overlap the anchor's: only what exceeds the
anchor's cycles (all fused layers of a group share the vector unit) is added. With ``none`` only
``act`` and ``norm`` join, each costing one SRAM read and write of its tensor and its full vector
cycles after the producer (the naive serial mode); in both modes a layer joins only when it
reads the output of the layer just before it.

Residency (``schedule.residency``)
----------------------------------
A tensor is *stored* when a layer reads it other than as its stream, or when no layer reads it (a
network output). With ``resident`` each stored tensor is placed, in production order, in the
activation storage of ``schedule.activation_kib`` KiB (default: the ifmap plus the ofmap SRAM):
from its producer's group to its last reader it takes ``r = min(size, free)`` bits, ``free``
being the least room left by the tensors placed before it over that interval; the remaining
``size - r`` bits spill: written to DRAM once, read back by each layer that reads it. (Tensors
placed earlier all start no later, so the least room is the room at the interval's start; the
room a tensor takes is free again after its last reader's group.) Network outputs are written to
DRAM; the network input (``prod(input_shape) x act_bits``) is read from DRAM by each layer that
reads it, as is a layer's input with no recorded producer (``inputs=()``). A layer reading
stored tensors takes the fraction ``in_dram = sum(spilled) / sum(size)`` of them from DRAM, the
rest from SRAM; the anchor of a group writes every stored tensor its group makes (``r`` bits to
SRAM, the rest to DRAM). With ``layerwise`` nothing stays: every stored tensor goes to DRAM and
comes back (the per-layer round trip; with ``fusion: none`` this is the model before residency
existed). Data-flow edges come from :attr:`Layer.inputs`; a name that no earlier layer has is
an error. The default storage is the same ifmap and ofmap SRAM the running layer's buffer tiles
use, and the tiles that stage a layer's spilled operands are not taken from it: optimistic by at
most those tiles (a separate store is ``activation_kib`` with buffers sized on their own). A
fused layer's DRAM side input is charged to its own stall, not added to its anchor's transfers
(under 1 % of the cycles of ResNet-18, GhostNet and MobileNetV2 even if serialized).

Depth first (``schedule.depth_first``, with ``resident``)
-------------------------------------------------------
The layers from a tensor's producer to its last reader can run a band of rows at a time
(line-buffered layer fusion: Alwani et al., MICRO 2016; DeFiNES, HPCA 2023) when none of them is
a linear layer or unknown vector work and all their weights fit the weight SRAM together (each
band runs every one of them). Such a tensor is then held whole on chip while taking only its
band of the storage: one output row of the last reader needs ``(rows - 1) * stride + kh`` input
rows of every conv or pooling on the way back (all layers in between counted, an upper bound for
branches), plus the row being written. A band that does not fit falls back to the rule above.
The mapping still costs each layer as whole-layer tiles (band-by-band tiles would add fills
and drains, small with pipelined folds).

Weights are read once per layer and batch (tiling permitting); ``schedule.weights_on_chip`` keeps
all of them in the weight SRAM, loaded before inference, when their total fits it.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from dataclasses import dataclass

from hwsim.accelerator import Accelerator
from hwsim.errors import HwsimError
from hwsim.mapping import Flow, Mapping
from hwsim.workload import NETWORK_INPUT, Layer, Workload

#: Vector ops that can run in the output stage of the layer before them.
_FUSABLE = ("act", "norm", "add", "mul", "maxpool", "avgpool")
_SERIAL = ("act", "norm")  # the ops fused (with an SRAM pass) in the naive mode


@dataclass(frozen=True)
class Placement:
    """Where one layer's input came from and where its output went, as the report shows it.

    Each is ``sram``, ``dram``, ``sram+dram`` (part on chip, part spilled) or ``fused`` (the
    producer's output stream, never stored); a fused layer with a stored input too reads
    e.g. ``fused+sram``. ``held_bits``: the activation storage taken while the layer runs (every
    tensor from its producer's group to its last reader's group, or its band).
    """

    input_from: str
    output_to: str
    held_bits: int = 0


def _label(parts: dict[str, bool]) -> str:
    return "+".join(k for k, on in parts.items() if on) or "-"


def _producers(workload: Workload) -> list[tuple[int, ...]]:
    """Per layer, the indices of the layers whose outputs it reads (-1: the network input).

    ``inputs=None`` reads the layer before (the network input for the first layer); ``()`` (no
    recorded producer, e.g. a tensor made inside the network) reads from DRAM as the network
    input does. A name that no earlier layer has is an error, not a silent guess.
    """
    latest: dict[str, int] = {}
    found = []
    for i, layer in enumerate(workload.layers):
        if layer.inputs is None:
            found.append((i - 1,))
        else:
            for name in layer.inputs:
                if name != NETWORK_INPUT and name not in latest:
                    raise HwsimError(f"layer {layer.name!r} reads {name!r}, which is no layer before it")
            found.append(tuple(dict.fromkeys(-1 if name == NETWORK_INPUT else latest[name]
                                             for name in layer.inputs)) or (-1,))
        latest[layer.name] = i
    return found


def _joins(layer: Layer, before: Layer, reads_before: bool, fusion: str) -> bool:
    """Whether ``layer`` runs in the output stage of ``before``, the layer just before it
    (``reads_before``: it reads that layer's output)."""
    if not reads_before:
        return False
    if fusion == "none":
        return layer.op in _SERIAL
    if layer.op not in _FUSABLE:
        return False
    if layer.op.endswith("pool"):
        return (layer.in_h, layer.in_w) == (before.out_h, before.out_w)
    return (layer.out_h, layer.out_w) == (before.out_h, before.out_w)


def _bits(layer: Layer) -> int:
    return layer.out_elems * layer.act_bits


def _streams_rows(layer: Layer) -> bool:
    """Whether ``layer`` can take its input a band of rows at a time: a conv, a pooling (a global
    one accumulates row by row) or an element-wise op on a map; not a linear layer (it needs its
    whole input vector) nor unknown vector work."""
    return layer.op not in ("linear", "vector")


def _band_bits(layers: tuple[Layer, ...], start: int, p: int, last: int, acc: Accelerator) -> int | None:
    """On-chip bits the output of layer ``p`` needs when the layers from ``start`` (its group's
    anchor) to ``last`` (its last reader) run depth first, a band of rows at a time; None when
    they cannot: a layer among them does not stream rows, or their weights do not all fit the
    weight SRAM (each would be re-read for every band).

    One output row of ``last`` needs ``(rows - 1) * stride + kh`` input rows of each conv or
    pooling before it, back to ``p`` (every layer in between is taken as on the path: an upper
    bound for branches); one more row lets ``p`` write the next row while it is read.
    """
    if not all(_streams_rows(layer) for layer in layers[p + 1:last + 1]):
        return None
    weights = sum(layer.weight_elems * acc.stored_weight_bits(layer.pe, layer.weight_bits)
                  for layer in layers[start:last + 1])
    if weights > acc.sram_kib("weight") * 8192:
        return None
    rows = 1
    for layer in reversed(layers[p + 1:last + 1]):
        if layer.op == "conv" or layer.op.endswith("pool"):
            rows = (rows - 1) * layer.stride[0] + layer.extent[0]
    made = layers[p]
    rows = min(made.out_h, rows + 1)
    return made.batch * made.out_ch * rows * made.out_w * made.act_bits


def plan(workload: Workload, acc: Accelerator) -> tuple[list[Flow], list[Placement]]:
    """The :class:`Flow` and :class:`Placement` of every layer of ``workload`` on ``acc``."""
    cfg = acc.schedule
    layers = workload.layers
    n = len(layers)
    if not n:
        return [], []
    reads = _producers(workload)
    fused = [i > 0 and _joins(layer, layers[i - 1], i - 1 in reads[i], cfg.fusion) for i, layer in enumerate(layers)]
    anchor = list(range(n))
    for i in range(1, n):
        if fused[i]:
            anchor[i] = anchor[i - 1]
    streamed = fused  # a joined layer reads the output of the layer before it as its stream
    # Readers of each tensor from storage (not as a stream), and whether it must be stored at all.
    stored_by: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for p in reads[i]:
            if p >= 0 and not (streamed[i] and p == i - 1):
                stored_by[p].append(i)
    default = acc.memory.global_buffer_kib or acc.memory.ifmap_sram_kib + acc.memory.ofmap_sram_kib
    capacity = (cfg.activation_kib or default) * 8192
    resident = [0] * n  # bits of each layer's output kept on chip
    held_delta = [0] * (n + 1)  # storage taken from a tensor's group to its last reader's group
    group_end = {a: i for i, a in enumerate(anchor)}
    if cfg.residency == "resident":
        # Anchors never decrease, so every tensor placed before p starts no later than p's group:
        # the least room over p's interval is the room at its start, what is held there now.
        held, ends = 0, []  # bits held at the current start; heap of (last reader, bits)
        for p in range(n):
            if not stored_by[p]:
                continue
            while ends and ends[0][0] < anchor[p]:
                held -= heapq.heappop(ends)[1]
            size, last = _bits(layers[p]), max(stored_by[p])
            band = _band_bits(layers, anchor[p], p, last, acc) if cfg.depth_first else None
            if band is not None and band <= capacity - held:  # whole tensor on chip, as a band
                resident[p], take = size, band
            else:
                resident[p] = take = max(0, min(size, math.floor(capacity - held)))
            held += take
            heapq.heappush(ends, (last, take))
            held_delta[anchor[p]] += take
            held_delta[group_end[anchor[last]] + 1] -= take
    weight_bits = sum(layer.weight_elems * acc.stored_weight_bits(layer.pe, layer.weight_bits) for layer in layers)
    weights_dram = not (cfg.weights_on_chip and weight_bits <= acc.sram_kib("weight") * 8192)
    read = {p for r in reads for p in r}
    stored = [bool(stored_by[p]) or p not in read for p in range(n)]  # network outputs too
    spilled = [_bits(layers[p]) - resident[p] if stored[p] else 0 for p in range(n)]
    group_out: dict[int, list[int]] = {}
    for p in range(n):
        if stored[p]:
            group_out.setdefault(anchor[p], []).append(p)
    stage = "fused" if cfg.fusion == "output_stage" else "serial"
    net_input = math.prod(workload.input_shape) if workload.input_shape else layers[0].in_elems
    flows, places, held_now = [], [], 0
    for i, layer in enumerate(layers):
        held_now += held_delta[i]
        storage = [p for p in reads[i] if not (streamed[i] and p == i - 1)]
        total = sum(_bits(layers[p]) if p >= 0 else net_input * layer.act_bits for p in storage)
        from_dram = total - sum(resident[p] for p in storage if p >= 0)
        outs = group_out.get(i, []) if anchor[i] == i else []
        flows.append(Flow(in_dram=from_dram / total if total else 0.0,
                          side_in_bits=total if streamed[i] else 0,
                          out_dram_bits=sum(spilled[p] for p in outs),
                          out_sram_bits=sum(resident[p] for p in outs),
                          weights_dram=weights_dram, stage=stage if fused[i] else "own"))
        places.append(Placement(
            input_from=_label({"fused": streamed[i], "sram": from_dram < total,
                               "dram": from_dram > 0}),
            output_to=_label({"fused": not stored[i], "sram": stored[i] and resident[i] > 0,
                              "dram": spilled[i] > 0}),
            held_bits=held_now))
    return flows, places


def overlap(mappings: list[Mapping], flows: list[Flow]) -> list[Mapping]:
    """``mappings`` with each fused layer's cycles hidden under its group's anchor: the fused layers
    of a group share the vector unit, and only their cycles beyond the anchor's count."""
    out = list(mappings)
    budget = busy = 0
    for i, (mapping, flow) in enumerate(zip(mappings, flows)):
        if flow.stage == "own":
            budget, busy = mapping.compute_cycles, 0
        if flow.stage != "fused":
            continue
        exposed_before = max(0, busy - budget)
        busy += mapping.compute_cycles
        out[i] = dataclasses.replace(mapping, compute_cycles=max(0, busy - budget) - exposed_before)
    return out

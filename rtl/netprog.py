"""The host side of the network accelerator: a memory image holding a command list and its data.

:func:`chain_program` lays out a chain of integer layers (each one's output the next one's
input) for :class:`rtl.sequencer.NetworkAccelerator`: per image, per layer, per tile
(:func:`rtl.host.tile_programs`) the five commands DESC, PARAMS, WEIGHTS, ACTS, STORE, each
tile's STORE after the next tile's loads (:func:`hwsim.rtl_sequence.pipelined`: the top runs a
tile while the write DMA stores the one before), then END.
Descriptors, parameters and weights are written once and shared by all images; only the first
layer's activations come from the host. Every other layer reads its input from the region its
producer's tiles scattered their outputs into (``BYTES``, or ``BITS`` for binary xnor outputs:
the channels-last activation layout of :mod:`rtl.top`, see :mod:`rtl.dma`); the last layer's
tiles store raw result beats that :func:`read_outputs` unpacks. Beats are packed into their
slots as :func:`rtl.dma.slot_bytes` defines.

Chaining is refused by name (:class:`~hwsim.errors.DoesNotFit`) where the layout cannot line up:
a grouped consumer (its activations are group-major), a depthwise producer run channel-parallel
(its out words hold blocks of channels the write DMA does not scatter), a consumer cut into K tiles (channel
slices), a flatten between a conv and a linear layer with more than one pixel, an output that is
not a byte per channel (``bits`` other than 8) or, for xnor, channel offsets that are not
byte-aligned. A K tile that writes partial sums gets an empty STORE.

A **residual block** whose shortcut is the chain's input: ``shortcut = l`` makes layer ``l`` add
each image to its output (:func:`models.intref.int_forward`'s ``residual``); the host lays the
image out a second time, per tile in out buffer order, and the tile reads it with a RESID command
before its STORE. (A shortcut from a tensor the accelerator produced would need its STORE to
write that order too, or a gathering read: not built.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import Const, Value

from hwsim.errors import DoesNotFit
from hwsim.rtl_plan import Tile, channel_parallel
from models.intref import int_forward
from hwsim.rtl_sequence import PAGE_BYTES, COMMAND_BYTES, Command, Op, StoreMode, pipelined, slot_bytes
from rtl.host import LayerProgram, QLayerLike, assemble, layer_shape, tile_programs, unpack
from rtl.sequencer import command_layout
from rtl.top import LayerAccelerator

__all__ = ["ChainProgram", "MemoryImage", "chain_program", "command", "pack_beats", "read_outputs"]


@dataclass
class MemoryImage:
    """Bytes from address 0, grown by :meth:`alloc`."""

    data: bytearray = field(default_factory=bytearray)

    def alloc(self, nbytes: int) -> int:
        """A zeroed region of ``nbytes`` on the next page (:data:`hwsim.rtl_sequence.PAGE_BYTES`,
        as DMA buffers are: a transfer's bursts then depend on its size alone); its address."""
        addr = -(-len(self.data) // PAGE_BYTES) * PAGE_BYTES
        self.data.extend(bytes(addr + nbytes - len(self.data)))
        return addr

    def put(self, payload: bytes) -> int:
        """``payload`` in a new region; its address."""
        addr = self.alloc(len(payload))
        self.data[addr:addr + len(payload)] = payload
        return addr

    def words(self, bus_bytes: int = 8) -> list[int]:
        """The image as little-endian words of ``bus_bytes`` (the last one zero-padded)."""
        padded = bytes(self.data) + bytes(-len(self.data) % bus_bytes)
        return [int.from_bytes(padded[i:i + bus_bytes], "little") for i in range(0, len(padded), bus_bytes)]


def pack_beats(beats: Sequence[int], width: int, bus_bits: int = 64) -> bytes:
    """``beats`` of ``width`` bits in their memory slots on a ``bus_bits`` wide bus."""
    slot = slot_bytes(width, bus_bits)
    return b"".join(int(b).to_bytes(slot, "little") for b in beats)


def command(cmd: Command) -> bytes:
    """One command's bytes (:func:`rtl.sequencer.command_layout`)."""
    value = Const.cast(command_layout().const({
        "op": int(cmd.op), "mode": int(cmd.mode), "beats": cmd.beats, "addr": cmd.addr,
        "pstride": cmd.pstride, "gstride": cmd.gstride, "pixels": cmd.pixels})).value
    return value.to_bytes(COMMAND_BYTES, "little")


@dataclass(frozen=True)
class TileStore:
    """Where a last-layer tile's raw result beats went."""

    tile: Tile
    part: QLayerLike
    prog: LayerProgram
    addr: int


@dataclass(frozen=True)
class Region:
    """A chained layer's output region: the consumer's activation layout, ``pstride`` bytes per
    pixel, ``pixels`` pixels."""

    addr: int
    pstride: int
    pixels: int


@dataclass(frozen=True)
class ChainProgram:
    """A laid-out chain: the image, the command list (and its address), per image the regions
    between layers and the last layer's tiles; the references (``expected[i][l]``: layer ``l``'s
    output on image ``i``)."""

    image: MemoryImage
    base: int
    regions: list[list[Region]]
    stores: list[list[TileStore]]
    expected: list[list[np.ndarray]]
    commands: list[Command]


def _width(value: object) -> int:
    return len(Value.cast(value))


def _region_layout(top: LayerAccelerator, producer: QLayerLike, consumer: QLayerLike,
                   y: np.ndarray) -> tuple[StoreMode, int]:
    """The store mode and pixel stride (bytes) of ``producer``'s output ``y`` as the input of
    ``consumer``; DoesNotFit naming why the two cannot be chained."""
    if consumer.groups != 1:
        raise DoesNotFit(f"the sequencer chains only into dense layers; the consumer has "
                         f"{consumer.groups} groups (its activations are group-major)")
    if channel_parallel(top.geo, layer_shape(producer)):
        raise DoesNotFit("a depthwise layer run channel-parallel cannot feed another layer in a chain "
                         "(the write DMA scatters lanes by output tile, not by depthwise block); "
                         "end the chain with it or generate the top with array.depthwise: gemm")
    if not consumer.conv and y.ndim == 4 and y.shape[2] * y.shape[3] > 1:
        raise DoesNotFit("a flatten of a multi-pixel map into a linear layer cannot be chained "
                         "(channels-first order); run the linear layer from the host")
    act_bits = top.geo.word_bits["act_words"]  # one activation word (a beat holds act_beat)
    if top.kind == "xnor":
        if not producer.binary_out:
            raise DoesNotFit("an xnor layer without binary outputs cannot feed another one")
        if top.cols % 8:
            raise DoesNotFit(f"packed xnor outputs need cols a multiple of 8, not {top.cols}; "
                              f"use e.g. --array {top.rows}x8")
        words = -(-consumer.in_channels // top.lanes)
        return StoreMode.BITS, words * slot_bytes(act_bits, top.geo.bus_bits)
    if top.out_shape.width != 8 or act_bits != 8:
        raise DoesNotFit(f"the sequencer scatters one byte per channel; bits={top.bits} is not 8")
    return StoreMode.BYTES, consumer.in_channels


def _tile_offset(q: QLayerLike, tile: Tile, mode: StoreMode) -> tuple[int, int]:
    """Channel offset of a tile's lane 0 and the group stride, in bytes (BYTES) or bits (BITS)."""
    per_group = q.out_channels // q.groups
    offset = tile.groups[0] * per_group + tile.channels[0]
    if mode == StoreMode.BITS and (offset % 8 or (q.groups > 1 and per_group % 8)):
        raise DoesNotFit(f"packed xnor outputs need byte-aligned channel offsets, not {offset}")
    return (offset // 8 if mode == StoreMode.BITS else offset), per_group


def chain_program(top: LayerAccelerator, layers: Sequence[QLayerLike], images: Sequence[np.ndarray],
                  shortcut: int | None = None) -> ChainProgram:
    """Lay out ``layers`` run in a chain on each input of ``images`` (module docstring); layer
    ``shortcut`` (if given) adds the image as its residual."""
    if not layers or not images:
        raise DoesNotFit("nothing to run: give at least one layer and one image")
    if shortcut is not None and not 0 <= shortcut < len(layers):
        raise DoesNotFit(f"shortcut layer {shortcut} is not one of the chain's {len(layers)} layers")
    img = MemoryImage()
    expected, modes = [], []
    for i, x in enumerate(images):
        ys, y = [], x
        for l, q in enumerate(layers):
            try:
                y = int_forward(q, y, residual=x if l == shortcut else None)
            except ValueError as exc:
                raise DoesNotFit(f"layer {l} cannot add the chain's input: {exc}") from None
            ys.append(y)
            if i == 0 and l + 1 < len(layers):  # refuse what cannot chain before running it
                modes.append(_region_layout(top, q, layers[l + 1], y))
        expected.append(ys)
    ins = [[x, *ys[:-1]] for x, ys in zip(images, expected)]
    tiled = [tile_programs(top, q, ins[0][l], images[0] if l == shortcut else None) for l, q in enumerate(layers)]
    width = {op: _width(s.payload) for op, s in ((Op.DESC, top.i_desc), (Op.PARAMS, top.i_params),
                                                 (Op.WEIGHTS, top.i_weights), (Op.ACTS, top.i_acts),
                                                 (Op.RESID, top.i_resid))}
    bus = top.geo.bus_bits
    shared = [[(img.put(pack_beats([p.descriptor], width[Op.DESC], bus)),
                img.put(pack_beats(p.params, width[Op.PARAMS], bus)),
                img.put(pack_beats(p.weights, width[Op.WEIGHTS], bus))) for _, _, p in layer] for layer in tiled]
    result_bits = _width(top.o_results.payload)
    cmds: list[Command] = []
    regions, stores = [], []
    for i, x in enumerate(images):
        own = [tile_programs(top, layers[0], x, x if shortcut == 0 else None)]
        resid = (own[0] if shortcut == 0 else
                 tile_programs(top, layers[shortcut], ins[i][shortcut], x)) if shortcut is not None else None
        outs = [Region(img.alloc(int(np.prod(expected[i][l].shape[2:] or (1,))) * ps), ps,
                       int(np.prod(expected[i][l].shape[2:] or (1,)))) for l, (_, ps) in enumerate(modes)]
        regions.append(outs)
        last = []
        for l, q in enumerate(layers):
            per_tile = []
            for t, (tile, part, prog) in enumerate(tiled[l]):
                desc, params, weights = shared[l][t]
                loads = [Command(Op.DESC, beats=1, addr=desc, plan=prog.plan),
                         Command(Op.PARAMS, beats=len(prog.params), addr=params),
                         Command(Op.WEIGHTS, beats=len(prog.weights), addr=weights)]
                if l == 0:
                    acts = img.put(pack_beats(own[0][t][2].acts, width[Op.ACTS], bus))
                elif tile.plan.psum_add or tile.plan.psum_write:
                    raise DoesNotFit(f"layer {l} of the chain runs as K tiles, which read channel slices "
                                     f"of its input (not contiguous in memory); only a chain's first layer can")
                else:
                    src = outs[l - 1]
                    row_w = expected[i][l - 1].shape[3] if q.conv else 1
                    acts = src.addr + (tile.in_rows[0] if q.conv else 0) * row_w * src.pstride
                loads.append(Command(Op.ACTS, beats=len(prog.acts), addr=acts))
                if l == shortcut and prog.plan.residual:
                    beats = resid[t][2].resid
                    loads.append(Command(Op.RESID, beats=len(beats),
                                         addr=img.put(pack_beats(beats, width[Op.RESID], bus))))
                if l + 1 < len(layers):
                    mode, ps = modes[l]
                    offset, gstride = _tile_offset(q, tile, mode)
                    out_w = prog.plan.out_w
                    store = Command(Op.STORE, beats=prog.result_beats, mode=mode, pstride=ps,
                                    addr=outs[l].addr + tile.rows[0] * out_w * ps + offset,
                                    gstride=gstride, pixels=prog.plan.out_h * out_w, plan=prog.plan)
                else:
                    addr = img.alloc(prog.result_beats * slot_bytes(result_bits, bus))
                    store = Command(Op.STORE, beats=prog.result_beats, addr=addr, plan=prog.plan)
                    last.append(TileStore(tile, part, prog, addr))
                per_tile.append((loads, store))
            cmds += pipelined(per_tile)  # a tile's store beside the next tile; layers in series
        stores.append(last)
    cmds.append(Command(Op.END))
    base = img.put(b"".join(command(c) for c in cmds))
    return ChainProgram(img, base, regions, stores, expected, cmds)


def read_outputs(top: LayerAccelerator, q: QLayerLike, memory: bytes, stores: Sequence[TileStore]) -> np.ndarray:
    """The last layer's output (as ``int_forward``) from its tiles' raw result beats in ``memory``."""
    slot = slot_bytes(_width(top.o_results.payload), top.geo.bus_bits)
    parts = []
    for s in stores:
        raw = memory[s.addr:s.addr + s.prog.result_beats * slot]
        beats = [int.from_bytes(raw[k:k + slot], "little") for k in range(0, len(raw), slot)]
        parts.append((s.tile, unpack(top, s.part, s.prog, beats)))
    return assemble(q, parts)

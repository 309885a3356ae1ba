"""A network as the hardware sees it: shapes, op kinds and bit widths, no torch objects.

A :class:`Workload` is an ordered tuple of :class:`Layer` rows. Compute layers (``conv``,
``linear``) are lowered to GEMMs by :mod:`hwsim.mapping`; every other layer (pooling,
element-wise, activation, normalization) is vector work on the accelerator's vector unit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

#: Layer op kinds that run on the PE array (lowered to GEMM).
COMPUTE_OPS = ("conv", "linear")
#: Layer op kinds that run on the vector unit, one element per lane per cycle.
VECTOR_OPS = ("maxpool", "avgpool", "add", "mul", "act", "norm", "vector")
#: The name :attr:`Layer.inputs` gives the network's input tensor.
NETWORK_INPUT = "@input"


@dataclass(frozen=True)
class Layer:
    """One layer of a workload (batch 1).

    Shapes are NCHW without the batch. A ``linear`` layer uses ``in_h = in_w = out_h = out_w = 1``
    and ``kernel = (1, 1)``; ``batch`` > 1 only when a linear layer is applied to several rows
    (e.g. tokens). ``pe`` is the datapath the layer needs after conversion (``mac``, ``adder``,
    ``xnor``, ``shift``) and is ``None`` for vector work. ``act_bits``/``weight_bits`` are the
    operand widths it is costed at (1 for ``xnor``). ``detail`` names the exact function for
    vector work (``relu``, ``hardsigmoid``, ``batchnorm`` ...). ``dilation`` spreads a conv's
    taps: the taps (and so the GEMM) are ``kernel``'s, the input span they read is
    :attr:`extent`.

    ``inputs`` names the layers whose output tensors this layer reads (:data:`NETWORK_INPUT` for
    the network's input), in argument order: two for a residual add, the producers of every part
    of a concatenation. ``None``: not recorded, read as a chain (the previous layer's output, the
    network input for the first layer), as a SCALE-Sim topology is.
    """

    name: str
    op: str
    in_ch: int
    in_h: int
    in_w: int
    out_ch: int
    out_h: int
    out_w: int
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    batch: int = 1
    pe: str | None = None
    act_bits: int = 8
    weight_bits: int = 8
    bias: bool = False
    params: int = 0
    detail: str = ""
    inputs: tuple[str, ...] | None = None
    dilation: tuple[int, int] = (1, 1)

    @property
    def extent(self) -> tuple[int, int]:
        """Input rows and columns one output pixel's taps span: ``dilation * (kernel - 1) + 1``."""
        return tuple(d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel))

    @property
    def is_compute(self) -> bool:
        return self.op in COMPUTE_OPS

    @property
    def gemm(self) -> tuple[int, int, int, int]:
        """``(groups, M, K, N)`` of the im2col GEMM: per group ``M x K`` times ``K x N``."""
        if not self.is_compute:
            raise ValueError(f"layer {self.name!r} ({self.op}) is vector work, not a GEMM")
        m = self.batch * self.out_h * self.out_w
        k = (self.in_ch // self.groups) * self.kernel[0] * self.kernel[1]
        n = self.out_ch // self.groups
        return self.groups, m, k, n

    @property
    def macs(self) -> int:
        """Multiply-accumulate-equivalent operations (one per weight use)."""
        if not self.is_compute:
            return 0
        g, m, k, n = self.gemm
        return g * m * k * n

    @property
    def out_elems(self) -> int:
        return self.batch * self.out_ch * self.out_h * self.out_w

    @property
    def in_elems(self) -> int:
        return self.batch * self.in_ch * self.in_h * self.in_w

    @property
    def vector_ops(self) -> int:
        """Element operations of vector work: one per output element, kernel-sized for pooling."""
        if self.is_compute:
            return 0
        if self.op in ("maxpool", "avgpool"):
            return self.out_elems * self.kernel[0] * self.kernel[1]
        return self.out_elems

    @property
    def weight_elems(self) -> int:
        if not self.is_compute:
            return 0
        return self.out_ch * (self.in_ch // self.groups) * self.kernel[0] * self.kernel[1]

    @property
    def shape(self) -> str:
        """Short human-readable shape, e.g. ``3x224x224 -> 16x112x112 k3 s2``."""
        text = f"{self.in_ch}x{self.in_h}x{self.in_w}->{self.out_ch}x{self.out_h}x{self.out_w}"
        if self.op == "conv" or self.op.endswith("pool"):
            text += f" k{self.kernel[0]}" + (f"s{self.stride[0]}" if self.stride[0] > 1 else "")
        if self.groups > 1:
            text += " dw" if self.groups == self.in_ch == self.out_ch else f" g{self.groups}"
        return text


@dataclass(frozen=True)
class Workload:
    """An ordered set of layers with the network's name and input shape."""

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...] = field(default_factory=tuple)
    warnings: tuple[str, ...] = ()

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def macs_by_pe(self) -> dict[str, int]:
        """MAC-equivalents per datapath kind, e.g. ``{"adder": 1.3e8, "mac": 1.1e7}``."""
        totals: dict[str, int] = {}
        for layer in self.layers:
            if layer.is_compute:
                totals[layer.pe] = totals.get(layer.pe, 0) + layer.macs
        return totals

    def binary_op_counts(self) -> dict[str, float]:
        """BNN-paper counts: BOPs (binary MACs), FLOPs (all other MACs), OPs = BOPs/64 + FLOPs."""
        by_pe = self.macs_by_pe()
        bops = by_pe.get("xnor", 0)
        flops = sum(v for pe, v in by_pe.items() if pe != "xnor")
        return {"bops": bops, "flops": flops, "ops": bops / 64 + flops}

    def without(self, names: set[str] | frozenset[str]) -> Workload:
        """This workload without the layers ``names``; a layer that read one of them reads what it
        read instead (removing a pass-through node, e.g. a ReLU a binary layer makes redundant)."""
        through = {layer.name: layer.inputs for layer in self.layers if layer.name in names}

        def rewire(inputs: tuple[str, ...] | None) -> tuple[str, ...] | None:
            if inputs is None:
                return None
            found: list[str] = []
            for name in inputs:
                found.extend((rewire(through[name]) or ()) if name in through else (name,))
            return tuple(dict.fromkeys(found))

        kept = tuple(dataclasses.replace(layer, inputs=rewire(layer.inputs))
                     for layer in self.layers if layer.name not in names)
        return dataclasses.replace(self, layers=kept)


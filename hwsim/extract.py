"""Turn any ``nn.Module`` and input shape into a :class:`~hwsim.workload.Workload`.

One forward pass in which the costed layers only produce zero tensors of their output shape
records every layer the hardware executes: module hooks catch convolutions (1-, 2-, 3-D and
transposed), linear layers, recurrent layers, multi-head attention, normalization, activations
and pooling (with their hyper-parameters), and a torch function mode catches what happens
outside those modules (residual adds, squeeze-excite multiplies, functional convolutions and
matrix products, attention written by hand, functional activations and pooling).

The pass runs on ordinary CPU tensors, not on shape-only "meta" tensors: torch computes meta
shapes of ``cat``, ``add``, ``mul``, pooling ... with Python reference kernels (``torch._refs``)
wrapped in ``torch._disable_dynamo``, whose first call imports ``torch._dynamo`` (with sympy and
``torch.fx``), 1.3 s or more -- far longer than the pass. What is left to compute outside the
costed layers (element-wise work and pooling on batch-1 activations) takes milliseconds. Pure data
movement (views, slices, concatenation, padding, im2col, pixel shuffle, nearest upsampling) costs
nothing and is left out on purpose; any other tensor function is costed as generic vector work
and named in ``Workload.warnings`` so nothing is dropped silently. No torch object survives into
the Workload.

Data-flow edges: every tensor the pass makes is tagged (by identity, through a weak reference)
with the layers that produced its data; free functions pass their inputs' tags on (a
concatenation carries both producers), and each recorded layer's :attr:`Layer.inputs` lists the
tags of the tensors it reads (:data:`~hwsim.workload.NETWORK_INPUT` for the network's input).
Parameters and tensors made from nothing carry no tag.

Layers written by others are recognised by what they compute (see :mod:`hwsim.recognise` for
registration, the explicit way):

* work on untagged tensors only (parameters, constants) is weight pre-processing the hardware
  does once, offline -- the sign and scale of binary weights, ``2**shift``, clamping, rounding --
  and is not costed; its results remember the parameters they came from and whether they went
  through a sign-like op (``sign``, ``where(c, a, -a)``, scaled by anything untagged) or a power
  of two (``exp2``, ``2**t``);
* an outer difference of activations and weights, then ``abs``, then a sum over the shared axis
  (AdderNet's ``unfold``/``sub``/``abs``/``sum``/``neg``), or ``cdist(p=1)``, is one adder GEMM
  -- a conv with the ``unfold``'s geometry, else a linear layer; it is never materialised;
* a functional conv/linear/matmul whose input is sign-valued and whose weight is too (by that
  history or, after a sign, one magnitude per output channel) is an xnor layer; one whose weight
  went through a power of two and is exactly signed powers of two is a shift layer;
* a straight-through estimator ``a.detach() - b.detach() + b`` (any arrangement of adds and
  subtracts that leaves one tensor) has ``a``'s value: it is free, and the work that only fed the
  cancelled terms (Bi-Real's piecewise-polynomial surrogate) is removed from the workload;
* Brevitas-style quantized layers give their bit widths (:func:`hwsim.recognise.quant_widths`).

Parameters that no costed layer uses are named, per module class, in a warning that says how to
register the class.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import string
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from contract import DEFAULT_MAX_SHIFT, ContractError, conv_out_size, layer_bits, operand_bits
from hwsim.errors import HwsimError
from hwsim.recognise import (infer_stride_padding, load_entry_points, pair, quant_widths, registration_of,
                             weight_kind)
from hwsim.workload import NETWORK_INPUT, Layer, Workload
from models.layers import PE_LAYERS, pe_kind_of

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)
_ACTS = (nn.ReLU, nn.ReLU6, nn.Hardsigmoid, nn.Hardswish, nn.Sigmoid, nn.Tanh, nn.SiLU, nn.GELU,
         nn.Hardtanh, nn.LeakyReLU, nn.PReLU, nn.Softmax)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_FREE_MODULES = (nn.Dropout, nn.Identity, nn.Flatten, nn.Unflatten)
#: Convolutions other than the 2-D ones a PE kind computes: costed as their GEMM, always mac.
_OTHER_CONVS = (nn.Conv1d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_SEQUENCE = (nn.RNNBase, nn.RNNCellBase, nn.MultiheadAttention)

#: Tensor functions that only move or view data: free on the accelerator.
FREE_FUNCTIONS = frozenset("""
    cat concat stack split chunk unbind narrow view reshape flatten unflatten permute transpose t
    contiguous squeeze unsqueeze expand expand_as getitem pad clone detach to float half double
    type dropout size dim numel get repeat_interleave zeros_like ones_like new_zeros new_ones
    new_empty empty_like setitem copy_ requires_grad_ roll repeat tile flip unfold fold_view
    pixel_shuffle pixel_unshuffle channel_shuffle movedim moveaxis swapaxes swapdims view_as
    reshape_as select index_select gather masked_select
""".split())
#: Free functions whose output holds none of their inputs' data (no data-flow edge).
_CREATORS = frozenset("zeros_like ones_like new_zeros new_ones new_empty empty_like size dim numel".split())
_ACT_FUNCTIONS = frozenset("""
    relu relu6 hardtanh hardsigmoid hardswish sigmoid tanh silu gelu leaky_relu clamp clip sign
    softmax elu sgn where log_softmax lt le gt ge eq ne abs maximum minimum
""".split())
_ELTWISE = {"add": "add", "sub": "add", "rsub": "add", "neg": "add", "mul": "mul", "div": "mul",
            "truediv": "mul"}
_NORM_FUNCTIONS = frozenset("batch_norm layer_norm group_norm instance_norm rms_norm".split())
#: Function-made GEMMs; ``retarget`` and ``convert`` leave them as they are (mac).
_GEMM_FUNCTIONS = frozenset(("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                             "conv_transpose3d", "linear", "matmul", "mm", "bmm", "addmm", "baddbmm",
                             "addbmm", "einsum", "cdist", "scaled_dot_product_attention"))
#: ``detail`` prefixes of GEMMs that no conversion changes: functions, and modules ``convert``
#: does not replace (1-D/3-D/transposed convolutions, recurrent layers, attention).
_FIXED = _GEMM_FUNCTIONS | frozenset(("lstm", "gru", "rnn", "multihead_attention"))
_POOL_FUNCTIONS = {"adaptive_avg_pool2d": "avgpool", "avg_pool2d": "avgpool", "mean": "avgpool",
                   "max_pool2d": "maxpool", "adaptive_max_pool2d": "maxpool"}
#: Interpolation modes that only copy pixels (free) and the taps per output of the others.
_COPY_MODES = frozenset(("nearest", "nearest-exact"))
_TAPS = {"linear": 2, "bilinear": 4, "bicubic": 16, "trilinear": 8}
_SIGN_LIKE = frozenset(("sign", "sgn"))


def _chw(shape: torch.Size) -> tuple[int, int, int]:
    """Channels, height, width of an (N, C, ...) shape; trailing dims fold into width."""
    dims = list(shape[1:]) + [1, 1, 1]
    return int(dims[0]), int(dims[1]), int(math.prod(shape[3:])) if len(shape) > 3 else int(dims[2])


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _base_name(func: Callable) -> str:
    name = getattr(func, "__name__", "") or type(func).__name__
    name = name.strip("_")
    if name.startswith(("i", "r")) and name[1:] in _ELTWISE:
        name = name[1:]
    return name[:-1] if name.endswith("_") else name


def _tensors(args: tuple, kwargs: dict) -> list[torch.Tensor]:
    """The tensors among ``args``/``kwargs`` and inside their lists and tuples (one level)."""
    found = []
    for value in itertools.chain(args, kwargs.values()):
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, torch.Tensor))
    return found


@dataclass(frozen=True)
class _Unfold:
    """The im2col geometry of an ``F.unfold`` output: what a GEMM on it convolves."""

    channels: int
    size: tuple[int, int]
    out: tuple[int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    batch: int
    dilation: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class _Outer:
    """A pending outer difference of activations and weights (stage ``diff``, or ``abs`` after
    its absolute value), not computed: an L1 distance if a sum over the shared axis follows."""

    act: torch.Tensor
    weight: torch.Tensor
    operands: tuple[torch.Tensor, torch.Tensor]
    shape: torch.Size
    stage: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class _Info:
    """What the tracer knows of a tensor's values beyond its shape (see the module docstring)."""

    binary: bool = False
    history: frozenset[str] = frozenset()
    params: frozenset[int] = frozenset()
    unfold: _Unfold | None = None
    combo: tuple[tuple[int, float], ...] | None = None
    root: int | None = None
    outer: _Outer | None = None
    l1: bool = False
    bits: int | None = None


_PLAIN = _Info()


class _Recorder(TorchFunctionMode):
    """Collects layers from module hooks and from tensor functions outside known modules."""

    def __init__(self, bits: int, leaves: set[nn.Module], modules: dict[str, nn.Module]) -> None:
        super().__init__()
        self.bits = bits
        self.leaves = leaves
        self.modules = modules
        self.layers: list[Layer] = []
        self.uncosted: dict[str, list[str]] = {}  # torch function -> labels of the layers it made
        self.stack: list[str] = []
        self.inside_leaf = 0
        self.counter: dict[str, int] = {}
        self.costed: set[nn.Module] = set()
        self.tags: dict[int, tuple[weakref.ref, tuple[str, ...]]] = {}  # id(tensor) -> producers
        self.infos: dict[int, tuple[weakref.ref, _Info]] = {}
        # straight-through roots, held (not weakly) so that their ids stay theirs during the pass
        self.roots: dict[int, tuple[torch.Tensor, _Info, tuple[str, ...]]] = {}
        self.params: dict[int, int] = {id(p): p.numel() for m in modules.values()
                                       for p in m.parameters(recurse=False)}
        self.accounted: set[int] = set()
        self.dead: set[str] = set()  # layers that fed only cancelled straight-through terms
        self.outers: set[int] = set()  # ids of pending outer differences (checked in every call)
        self.outputs: tuple[str, ...] = ()

    # --- data-flow tags -------------------------------------------------------------------------
    def sources(self, values: Any) -> tuple[str, ...]:
        """Producers of the tensors in ``values`` (nested tuples, lists, dicts), first use first."""
        found: dict[str, None] = {}
        stack = [values]
        while stack:
            value = stack.pop()
            if isinstance(value, torch.Tensor):
                entry = self.tags.get(id(value))
                if entry is not None and entry[0]() is value:
                    found.update(dict.fromkeys(entry[1]))
            elif isinstance(value, (tuple, list)):
                stack.extend(reversed(value))
            elif isinstance(value, dict):
                stack.extend(reversed(list(value.values())))
        return tuple(found)

    def tag(self, values: Any, producers: tuple[str, ...]) -> None:
        """Mark the tensors in ``values`` (a tensor or nested tuples/lists of them, e.g. an LSTM's
        ``(out, (h, c))``) as made by ``producers``."""
        for value in values if isinstance(values, (tuple, list)) else (values,):
            if isinstance(value, torch.Tensor):
                self.tags[id(value)] = (weakref.ref(value), producers)
            elif isinstance(value, (tuple, list)):
                self.tag(value, producers)

    def tagged(self, value: torch.Tensor) -> bool:
        """Whether ``value`` holds activation data (something the network input produced)."""
        entry = self.tags.get(id(value))
        return entry is not None and bool(entry[1]) and entry[0]() is value

    def info(self, value: torch.Tensor) -> _Info:
        entry = self.infos.get(id(value))
        if entry is not None and entry[0]() is value:
            return entry[1]
        return _Info(params=frozenset((id(value),))) if id(value) in self.params else _PLAIN

    def set_info(self, value: Any, info: _Info) -> None:
        if isinstance(value, torch.Tensor):
            if info == _PLAIN:
                self.infos.pop(id(value), None)
            else:
                self.infos[id(value)] = (weakref.ref(value), info)

    def account(self, tensors: list[torch.Tensor]) -> int:
        """Parameters behind ``tensors`` (weights, or parts of a concatenation such as a class
        token) that no layer has claimed yet: claim them, count them."""
        new = {p for t in tensors for p in self.info(t).params} - self.accounted
        self.accounted |= new
        return sum(self.params[p] for p in new)

    # --- module hooks -------------------------------------------------------------------------
    def pre_hook(self, name: str, module: nn.Module) -> None:
        self.stack.append(name)
        if module in self.leaves:
            self.inside_leaf += 1

    def post_hook(self, name: str, module: nn.Module, inputs: tuple, kwargs: dict, output: Any) -> None:
        self.stack.pop()
        if module not in self.leaves:
            return
        self.inside_leaf -= 1
        sources = self.sources((inputs, kwargs))
        self.costed.add(module)
        if module._modules:
            self.costed.update(module.modules())
        if isinstance(module, _FREE_MODULES):
            self.tag(output, sources)
            return
        args = list(inputs) + list(kwargs.values())
        x = args[0]
        if not isinstance(x, torch.Tensor):
            raise HwsimError(f"module {name!r} ({type(module).__name__}) takes a {type(x).__name__}; "
                             "give it a padded tensor (packed sequences are not costed)")
        y = output[0] if isinstance(output, tuple) else output
        layers = self._module_layers(name or type(module).__name__, module, args, output, x, y)
        fed = self.account([t for t in _tensors(inputs, kwargs)])  # parameters fed in as inputs
        if fed:
            layers[0] = dataclasses.replace(layers[0], params=layers[0].params + fed)
        for i, layer in enumerate(layers):
            self.layers.append(dataclasses.replace(layer, inputs=sources if i == 0 else (layers[i - 1].name,)))
        self.tag(output, (layers[-1].name,))
        _, _, out_bits = quant_widths(module)
        if out_bits is not None:
            self.set_info(y, _Info(bits=out_bits))

    def _module_layers(self, name: str, module: nn.Module, args: list, output: Any,
                       x: torch.Tensor, y: torch.Tensor) -> list[Layer]:
        registration = registration_of(module)
        if registration is not None:
            return [self._registered_layer(name, module, registration, x, y)]
        if isinstance(module, nn.MultiheadAttention):
            return self._attention_layers(name, module, args, output)
        if isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
            return self._recurrent_layers(name, module, x)
        if isinstance(module, _OTHER_CONVS):
            w = module.weight
            layer = _conv_layer(name, x.shape, w.shape, y.shape, module.stride, module.padding,
                                module.groups, module.transposed,
                                f"{_conv_function(module)}: {type(module).__name__}", self.bits)
            return [dataclasses.replace(layer, bias=module.bias is not None,
                                        params=sum(p.numel() for p in module.parameters()))]
        return [self._module_layer(name, module, x, y)]

    def _module_layer(self, name: str, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Layer:
        xs, ys = x.shape, y.shape
        cin, h, w = _chw(xs)
        cout, oh, ow = _chw(ys)
        params = sum(p.numel() for p in module.parameters(recurse=False))
        pe = pe_kind_of(module)
        if pe is not None:
            has_bias = getattr(module, "bias", None) is not None
            act_bits, weight_bits = _widths(pe, self.bits, getattr(module, "max_shift", DEFAULT_MAX_SHIFT))
            in_bits, w_bits, _ = quant_widths(module)
            in_bits = in_bits or self.info(x).bits
            if w_bits is not None or in_bits is not None:  # a quantized layer: its own widths
                act_bits, weight_bits = in_bits or self.bits, w_bits or self.bits
                if act_bits == weight_bits == 1:
                    pe = "xnor"
            common = dict(name=name, pe=pe, act_bits=act_bits, weight_bits=weight_bits, bias=has_bias,
                          detail=type(module).__name__)
            if isinstance(module, nn.Conv2d):
                layer = Layer(op="conv", in_ch=cin, in_h=h, in_w=w, out_ch=cout, out_h=oh, out_w=ow,
                              kernel=_pair(module.kernel_size), stride=_pair(module.stride),
                              padding=_pad2(module.padding, module.kernel_size, module.dilation),
                              groups=module.groups, batch=int(xs[0]), dilation=_pair(module.dilation), **common)
            else:
                layer = Layer(op="linear", in_ch=int(xs[-1]), in_h=1, in_w=1, out_ch=int(ys[-1]),
                              out_h=1, out_w=1, batch=int(math.prod(xs[:-1])), **common)
            # one parameter per weight whatever its encoding (a shift weight stores sign and shift)
            return dataclasses.replace(layer, params=layer.weight_elems + (layer.out_ch if has_bias else 0))
        detail = type(module).__name__.lower()
        if isinstance(module, _POOLS):
            op = "maxpool" if "max" in detail else "avgpool"
            kernel = (max(1, h // max(oh, 1)), max(1, w // max(ow, 1)))
            if hasattr(module, "kernel_size") and not detail.startswith("adaptive"):
                kernel = _pair(module.kernel_size)
            return self._vector(name, op, xs, ys, detail, params, kernel=kernel)
        op = "norm" if isinstance(module, _NORMS) else "act"
        return self._vector(name, op, xs, ys, detail, params)

    def _registered_layer(self, name: str, module: nn.Module, reg: Any, x: torch.Tensor,
                          y: torch.Tensor) -> Layer:
        """One conv/linear layer of the registered kind, shaped by the module's weight."""
        w = getattr(module, reg.weight, None)
        if not isinstance(w, torch.Tensor) or w.dim() not in (2, 4):
            raise HwsimError(f"module {name!r} ({type(module).__name__}) is registered with weight="
                             f"{reg.weight!r}, but that is not a 2-D or 4-D tensor; pass "
                             "register_layer(..., weight='<attribute holding the weight>')")
        act_bits, weight_bits = _widths(reg.kind, self.bits)
        common = dict(name=name, pe=reg.kind, act_bits=act_bits, weight_bits=weight_bits,
                      detail=type(module).__name__, bias=getattr(module, "bias", None) is not None,
                      params=sum(p.numel() for p in module.parameters()))
        if w.dim() == 2:
            return Layer(op="linear", in_ch=int(w.shape[1]), in_h=1, in_w=1, out_ch=int(w.shape[0]),
                         out_h=1, out_w=1, batch=int(math.prod(y.shape[:-1])), **common)
        cin, h, wd = _chw(x.shape)
        cout, oh, ow = _chw(y.shape)
        kernel = (int(w.shape[2]), int(w.shape[3]))
        groups = int(getattr(module, reg.groups, None) or max(1, cin // int(w.shape[1])))
        given_stride, given_padding = getattr(module, reg.stride, None), getattr(module, reg.padding, None)
        inferred = [infer_stride_padding(size, out, k) for size, out, k in zip((h, wd), (oh, ow), kernel)]
        stride = pair(given_stride, 0) if given_stride is not None else (inferred[0][0], inferred[1][0])
        padding = pair(given_padding, 0) if given_padding is not None else (inferred[0][1], inferred[1][1])
        return Layer(op="conv", in_ch=cin, in_h=h, in_w=wd, out_ch=cout, out_h=oh, out_w=ow, kernel=kernel,
                     stride=stride, padding=padding, groups=groups, batch=int(x.shape[0]), **common)

    def _linear(self, name: str, m: int, k: int, n: int, detail: str, groups: int = 1,
                params: int = 0, bias: bool = False) -> Layer:
        """A ``groups`` x (``m`` x ``k``) @ (``k`` x ``n``) GEMM as a (grouped) linear layer."""
        act_bits, weight_bits = _widths("mac", self.bits)
        return Layer(name=name, op="linear", in_ch=k * groups, in_h=1, in_w=1, out_ch=n * groups,
                     out_h=1, out_w=1, groups=groups, batch=m, pe="mac", act_bits=act_bits,
                     weight_bits=weight_bits, detail=detail, params=params, bias=bias)

    def _elementwise(self, name: str, op: str, rows: int, count: int, steps: int, detail: str,
                     kernel: tuple[int, int] = (1, 1)) -> Layer:
        """Vector work of ``count`` elements per row and step (``rows`` x ``steps`` of them)."""
        return Layer(name=name, op=op, in_ch=count, in_h=steps, in_w=1, out_ch=count, out_h=steps,
                     out_w=1, kernel=kernel, batch=rows, act_bits=self.bits, weight_bits=self.bits,
                     detail=detail)

    def _attention(self, name: str, groups: int, q_len: int, k_len: int, head: int, v_head: int,
                   detail: str) -> list[Layer]:
        """Scaled dot-product attention of ``groups`` heads: scale, QK^T, softmax, AV."""
        return [self._elementwise(f"{name}.scale", "mul", groups, head, q_len, f"{detail}: q scale"),
                self._linear(f"{name}.qk", q_len, head, k_len, f"{detail}: QK^T", groups),
                self._elementwise(f"{name}.softmax", "act", groups, k_len, q_len, f"{detail}: softmax"),
                self._linear(f"{name}.av", q_len, k_len, v_head, f"{detail}: AV", groups)]

    def _attention_layers(self, name: str, module: nn.MultiheadAttention, args: list,
                          output: Any) -> list[Layer]:
        """nn.MultiheadAttention: q/k/v projections, per-head attention, output projection."""
        query, key = args[0], args[1] if len(args) > 1 else args[0]
        batched = query.dim() == 3
        n = int(query.shape[0 if module.batch_first else 1]) if batched else 1
        q_len = int(query.shape[1 if module.batch_first and batched else 0])
        k_len = int(key.shape[1 if module.batch_first and batched else 0])
        k_len += (module.bias_k is not None) + bool(module.add_zero_attn)
        e, heads = module.embed_dim, module.num_heads
        bias = module.in_proj_bias is not None
        detail = "multihead_attention"
        extra = sum(t.numel() for t in (module.bias_k, module.bias_v) if t is not None)
        layers = [self._linear(f"{name}.q_proj", n * q_len, e, e, f"{detail}: q projection",
                               params=e * e + e * bias, bias=bias),
                  self._linear(f"{name}.k_proj", n * k_len, module.kdim, e, f"{detail}: k projection",
                               params=module.kdim * e + e * bias + extra // 2, bias=bias),
                  self._linear(f"{name}.v_proj", n * k_len, module.vdim, e, f"{detail}: v projection",
                               params=module.vdim * e + e * bias + extra - extra // 2, bias=bias)]
        layers += self._attention(name, n * heads, q_len, k_len, e // heads, e // heads, detail)
        out_bias = module.out_proj.bias is not None
        layers.append(self._linear(f"{name}.out_proj", n * q_len, e, e, f"{detail}: output projection",
                                   params=e * e + e * out_bias, bias=out_bias))
        weights = output[1] if isinstance(output, tuple) else None
        if weights is not None and weights.dim() == query.dim():  # averaged over the heads
            layers.append(self._elementwise(f"{name}.weights_mean", "avgpool", n, k_len, q_len,
                                            f"{detail}: head-averaged weights", kernel=(heads, 1)))
        return layers

    def _recurrent_layers(self, name: str, module: nn.Module, x: torch.Tensor) -> list[Layer]:
        """LSTM/GRU/RNN (and their cells): per layer and direction the input GEMM over all steps,
        the recurrent GEMM (mapped as one GEMM of steps x batch rows; the step-to-step dependency
        is not modelled), LSTM's projection, and the gate arithmetic of every step."""
        mode = ("lstm" if isinstance(module, (nn.LSTM, nn.LSTMCell)) else
                "gru" if isinstance(module, (nn.GRU, nn.GRUCell)) else "rnn")
        gates = {"lstm": 4, "gru": 3}.get(mode, 1)
        cell = isinstance(module, nn.RNNCellBase)
        if cell:
            steps, rows = 1, int(x.shape[0]) if x.dim() == 2 else 1
            layers_n, directions, proj = 1, 1, 0
        else:
            batched = x.dim() == 3
            steps = int(x.shape[1 if module.batch_first and batched else 0])
            rows = int(x.shape[0 if module.batch_first else 1]) if batched else 1
            layers_n, directions = module.num_layers, 1 + module.bidirectional
            proj = getattr(module, "proj_size", 0)
        hidden = module.hidden_size
        out = proj or hidden
        bias = module.bias
        nonlinearity = getattr(module, "nonlinearity", "tanh")
        # element-wise work per step and hidden unit (torch's cells): adds, muls, sigmoids, tanhs
        gate_ops = {"lstm": (("add", "add", 5), ("mul", "mul", 3), ("act", "sigmoid", 3), ("act", "tanh", 2)),
                    "gru": (("add", "add", 5), ("mul", "mul", 2), ("act", "sigmoid", 2), ("act", "tanh", 1)),
                    }.get(mode, (("add", "add", 1), ("act", nonlinearity, 1)))
        layers = []
        m = steps * rows
        for layer in range(layers_n):
            width = module.input_size if layer == 0 else out * directions
            for direction in range(directions):
                tag = f"{name}.l{layer}" + (".reverse" if direction else "")
                layers.append(self._linear(f"{tag}.input", m, width, gates * hidden, f"{mode}: input GEMM",
                                           params=gates * hidden * (width + bias), bias=bias))
                layers.append(self._linear(f"{tag}.recurrent", m, out, gates * hidden,
                                           f"{mode}: recurrent GEMM", params=gates * hidden * (out + bias),
                                           bias=bias))
                if proj:
                    layers.append(self._linear(f"{tag}.projection", m, hidden, proj, f"{mode}: projection",
                                               params=hidden * proj))
                layers += [self._elementwise(f"{tag}.{what}", op, rows, count * hidden, steps,
                                             f"{mode}: gate {what}")
                           for op, what, count in gate_ops]
        return layers

    def _vector(self, name: str, op: str, xs: torch.Size, ys: torch.Size, detail: str,
                params: int = 0, kernel: tuple[int, int] = (1, 1)) -> Layer:
        cin, h, w = _chw(xs)
        cout, oh, ow = _chw(ys)
        return Layer(name=name, op=op, in_ch=cin, in_h=h, in_w=w, out_ch=cout, out_h=oh, out_w=ow,
                     kernel=kernel, batch=int(xs[0]) if len(xs) else 1, act_bits=self.bits,
                     weight_bits=self.bits, params=params, detail=detail)

    # --- tensor functions outside known modules -------------------------------------------------
    def __torch_function__(self, func: Callable, types: tuple, args: tuple = (), kwargs: dict | None = None):
        kwargs = kwargs or {}
        if self.inside_leaf:
            return func(*args, **kwargs)
        name = _base_name(func)
        tensors = _tensors(args, kwargs)
        pending = [t for t in tensors if id(t) in self.outers and self.info(t).outer is not None]
        if pending:
            done = self._l1(name, args, kwargs, pending[0])
            if done is not None:
                return done
            args, kwargs = self._materialise(args, kwargs)
            tensors = _tensors(args, kwargs)
        if name in FREE_FUNCTIONS or (name == "interpolate" and _interpolation(args, kwargs) in _COPY_MODES):
            out = func(*args, **kwargs)
            if name not in _CREATORS:  # in-place copies (setitem, copy_) tag their target
                target = out if out is not None else args[:1]
                self.tag(target, self.sources((args, kwargs)))
                self._pass_info(func, name, args, kwargs, tensors, target)
            return out
        acts = [t for t in tensors if self.tagged(t)]
        if not acts:  # weights and constants only: pre-processing done once, offline
            out = func(*args, **kwargs)
            if tensors and isinstance(out, torch.Tensor):
                self.set_info(out, self._value_info(name, args, kwargs, tensors, out))
            return out
        if name == "sub" and len(args) == 2 and all(isinstance(a, torch.Tensor) for a in args):
            outer = self._outer(args, acts)
            if outer is not None:
                return outer
        if name == "cdist" and _norm_order(args[2:], kwargs, "p", 2.0) == 1:
            return self._cdist(args, kwargs, acts)
        out = _stand_in(name, args, kwargs)
        out = func(*args, **kwargs) if out is None else out
        if not isinstance(out, torch.Tensor) or out.dim() == 0:
            return out
        info = self._value_info(name, args, kwargs, tensors, out)
        sources = self.sources((args, kwargs))
        if info.root is not None and info.combo is None:  # a straight-through estimator: a's value
            self._cancel(info.root, sources, out)
            return out
        if name == "neg" and self.info(args[0]).l1:  # AdderNet's -sum|x - w| is the adder's own sign
            self.tag(out, sources)
            return out
        for layer in self._record_function(name, args, kwargs, out):
            self.layers.append(dataclasses.replace(layer, inputs=sources if layer.inputs is None else layer.inputs))
        self.tag(out, (self.layers[-1].name,))
        self.set_info(out, dataclasses.replace(info, root=None))
        return out

    # --- what values a function makes -----------------------------------------------------------
    def _pass_info(self, func: Callable, name: str, args: tuple, kwargs: dict,
                   tensors: list[torch.Tensor], target: Any) -> None:
        """A view or copy keeps its input's value facts (a concatenation: what all parts share)."""
        if not tensors or not isinstance(target, torch.Tensor):
            return
        infos = [self.info(t) for t in tensors]
        if func is F.unfold:
            x = args[0]
            kernel = pair(args[1] if len(args) > 1 else kwargs["kernel_size"], 1)
            stride = pair(kwargs.get("stride", args[4] if len(args) > 4 else 1), 1)
            padding = pair(kwargs.get("padding", args[3] if len(args) > 3 else 0), 0)
            dilation = pair(kwargs.get("dilation", args[2] if len(args) > 2 else 1), 1)
            size = (int(x.shape[-2]), int(x.shape[-1]))
            out = tuple(conv_out_size(s, k, st, p, d) for s, k, st, p, d in zip(size, kernel, stride, padding, dilation))
            geometry = _Unfold(int(x.shape[-3]), size, out, kernel, stride, padding,
                               int(x.shape[0]) if x.dim() == 4 else 1, dilation)
            self.set_info(target, dataclasses.replace(infos[0], unfold=geometry, root=None, combo=None))
        elif len(tensors) == 1 or name in ("setitem", "copy_"):
            first = infos[0]
            if first != _PLAIN or name == "detach":  # detach: a straight-through term's root
                self.set_info(target, dataclasses.replace(first, root=self._root_of(tensors[0])))
        else:  # cat, stack ...: sign-valued if every part is
            self.set_info(target, _Info(binary=all(i.binary for i in infos),
                                        params=frozenset().union(*(i.params for i in infos))))

    def _value_info(self, name: str, args: tuple, kwargs: dict, tensors: list[torch.Tensor],
                    out: torch.Tensor) -> _Info:
        """Facts about ``out``: parameters behind it (weight side), sign or power-of-two history,
        sign values, and the linear combination of a straight-through estimator."""
        infos = [self.info(t) for t in tensors]
        params = frozenset().union(*(i.params for i in infos)) if not any(map(self.tagged, tensors)) else frozenset()
        history = frozenset().union(*(i.history for i in infos))
        pow2 = name == "exp2" or (name in ("pow", "float_power") and args and args[0] == 2) or \
            (name == "rpow" and len(args) > 1 and args[1] == 2) or name == "ldexp"
        binary = name in _SIGN_LIKE or (name == "where" and _opposite(args[1:3]))
        if name in ("mul", "div", "truediv", "neg"):  # a sign scaled by a weight-side factor
            operands = [a for a in args[:2] if isinstance(a, torch.Tensor)]
            signs = [a for a in operands if self.info(a).binary]
            others = [a for a in operands if not self.info(a).binary]
            binary = len(signs) == 1 and all(not self.tagged(a) for a in others)
        history |= {"sign"} if binary else frozenset()
        history |= {"pow2"} if pow2 else frozenset()
        info = _Info(binary=binary, history=history, params=params)
        if name in ("add", "sub", "rsub") and len(args) == 2 and all(isinstance(a, torch.Tensor) for a in args):
            return self._combine(name, args, kwargs, info)
        return info

    def _root_of(self, value: torch.Tensor) -> int:
        """The id of the tensor whose values ``value`` has (itself, or what it views), kept alive
        in :attr:`roots` so that no later tensor can take that id during the pass."""
        info = self.info(value)
        if info.root is not None:
            return info.root
        self.roots.setdefault(id(value), (value, info, self.sources(value)))
        return id(value)

    def _combo_of(self, value: torch.Tensor) -> tuple[tuple[int, float], ...]:
        info = self.info(value)
        return info.combo if info.combo is not None else ((self._root_of(value), 1.0),)

    def _combine(self, name: str, args: tuple, kwargs: dict, info: _Info) -> _Info:
        """Track ``a +- b`` as a combination of root tensors when a sign-valued tensor is involved;
        a combination left with one root of weight 1 has that root's value (``root`` set, no
        ``combo``)."""
        a, b = args
        if not any(self.info(t).binary or self.info(t).combo is not None for t in (a, b)):
            return info
        scale = float(kwargs.get("alpha", 1)) * (-1.0 if name in ("sub", "rsub") else 1.0)
        first, second = (b, a) if name == "rsub" else (a, b)
        terms: dict[int, float] = {}
        for value, weight in ((first, 1.0), (second, scale)):
            for root, coeff in self._combo_of(value):
                terms[root] = terms.get(root, 0.0) + weight * coeff
        terms = {root: coeff for root, coeff in terms.items() if coeff != 0}
        if len(terms) == 1 and next(iter(terms.values())) == 1.0:
            root = next(iter(terms))
            return dataclasses.replace(self.roots[root][1], root=root, combo=None, params=info.params)
        return dataclasses.replace(info, combo=tuple(terms.items()))

    def _cancel(self, root: int, sources: tuple[str, ...], out: torch.Tensor) -> None:
        """``out`` has the value of ``root``: free; what fed only the cancelled terms is dead."""
        _, root_info, producers = self.roots[root]
        self.dead.update(s for s in sources if s not in producers)
        self.tag(out, producers)
        self.set_info(out, dataclasses.replace(root_info, root=root, combo=None))

    # --- L1 distances (AdderNet) ----------------------------------------------------------------
    def _outer(self, args: tuple, acts: list[torch.Tensor]) -> torch.Tensor | None:
        """``act - weight`` (either order) broadcast to more elements than both: pending, as a
        zero-stride stand-in of the broadcast shape."""
        act = acts[0]
        weight = args[1] if args[0] is act else args[0]
        if len(acts) != 1 or not self.info(weight).params:
            return None
        shape = _broadcast(args[0].shape, args[1].shape)
        if math.prod(shape) <= max(act.numel(), weight.numel()):
            return None
        out = torch.zeros((), dtype=act.dtype, device=act.device).expand(shape)
        self.outers.add(id(out))
        self.set_info(out, _Info(outer=_Outer(act, weight, (args[0], args[1]), shape, "diff",
                                              self.sources(act))))
        return out

    def _l1(self, name: str, args: tuple, kwargs: dict, pending: torch.Tensor) -> torch.Tensor | None:
        """Advance a pending outer difference: ``abs``, then a sum (or an L1 norm) over the axes both
        sides span makes one adder layer. None: the pattern does not continue."""
        outer = self.info(pending).outer
        if not args or args[0] is not pending:
            return None
        if name == "abs" and outer.stage == "diff":
            out = pending.expand(outer.shape)
            self.outers.add(id(out))
            self.set_info(out, _Info(outer=dataclasses.replace(outer, stage="abs")))
            return out
        if name == "sum" and outer.stage == "abs":
            dims = kwargs.get("dim", args[1] if len(args) > 1 else None)
        elif name in ("norm", "linalg_vector_norm", "vector_norm") and outer.stage == "diff" \
                and _norm_order(args[1:2], kwargs, "p" if name == "norm" else "ord", 2.0) == 1:
            dims = kwargs.get("dim", args[2] if len(args) > 2 else None)
        else:
            return None
        keepdim = bool(kwargs.get("keepdim", False))
        if dims is None:
            return None
        nd = len(outer.shape)
        dims = {d % nd for d in ((dims,) if isinstance(dims, int) else dims)}
        act = [1] * (nd - outer.act.dim()) + list(outer.act.shape)
        weight = [1] * (nd - outer.weight.dim()) + list(outer.weight.shape)
        if any(act[d] != weight[d] for d in dims):
            return None
        sizes = {"k": 1, "m": 1, "n": 1, "g": 1}
        for d, size in enumerate(outer.shape):
            role = "k" if d in dims else "g" if act[d] > 1 and weight[d] > 1 else "m" if act[d] > 1 else "n"
            sizes[role] *= int(size)
        reduced = [1 if d in dims else s for d, s in enumerate(outer.shape) if keepdim or d not in dims]
        out = torch.zeros(reduced, dtype=pending.dtype, device=pending.device)
        layer = self._gemm(self._recognised_name("adder"), "adder", sizes["g"], sizes["m"], sizes["k"],
                           sizes["n"], outer.act, outer.weight, self._owner_detail("L1 distance"))
        self.layers.append(dataclasses.replace(layer, inputs=outer.sources))
        self.tag(out, (layer.name,))
        self.set_info(out, _Info(l1=True))
        return out

    def _cdist(self, args: tuple, kwargs: dict, acts: list[torch.Tensor]) -> torch.Tensor:
        """``cdist(x, w, p=1)`` with one side weights: the L1 distances of an adder layer."""
        x1, x2 = args[0], args[1]
        if len(acts) != 1:
            raise HwsimError("cdist(p=1) between two activation tensors has no datapath; "
                             "only distances to weights are adder layers")
        if x1.shape[-1] != x2.shape[-1]:
            raise RuntimeError(f"cdist: X1 and X2 must have the same number of columns, got {x1.shape[-1]} "
                               f"and {x2.shape[-1]}")
        act, weight = (x1, x2) if acts[0] is x1 else (x2, x1)
        rows, k = int(math.prod(act.shape[:-1])), int(act.shape[-1])
        out = torch.zeros(_broadcast(x1.shape[:-2], x2.shape[:-2]) + (x1.shape[-2], x2.shape[-2]),
                          dtype=x1.dtype, device=x1.device)
        layer = self._gemm(self._recognised_name("adder"), "adder", 1, rows, k, int(weight.shape[-2]),
                           act, weight, self._owner_detail("cdist p=1"))
        self.layers.append(dataclasses.replace(layer, inputs=self.sources(act)))
        self.tag(out, (layer.name,))
        self.set_info(out, _Info(l1=True))
        return out

    def _materialise(self, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        """Pending differences used by anything else: compute them, recorded as the vector work
        (a subtract, an ``abs``) they are."""
        def real(value: Any) -> Any:
            outer = self.info(value).outer if isinstance(value, torch.Tensor) else None
            if outer is None:
                return value
            made = outer.operands[0] - outer.operands[1]
            steps = [("sub", made)] + ([("abs", made.abs())] if outer.stage == "abs" else [])
            for name, tensor in steps:
                label = f"{self.stack[-1]}.{name}" if self.stack else name
                self.layers.append(dataclasses.replace(
                    self._vector(label, "add" if name == "sub" else "act", tensor.shape, tensor.shape, name),
                    inputs=outer.sources if name == "sub" else (self.layers[-1].name,)))
            self.tag(steps[-1][1], (self.layers[-1].name,))
            return steps[-1][1]
        return tuple(real(a) for a in args), {k: real(v) for k, v in kwargs.items()}

    # --- recording ------------------------------------------------------------------------------
    def _recognised_name(self, kind: str) -> str:
        """The enclosing module's name (the network's class name at the top) for its first
        recognised layer, then ``name.kindN``."""
        parent = self.stack[-1] if self.stack else ""
        index = self.counter[f"@{parent}"] = self.counter.get(f"@{parent}", 0) + 1
        owner = parent or (type(self.modules[""]).__name__ if self.stack else "")
        if owner and index == 1:
            return owner
        return f"{owner}.{kind}{index}" if owner else f"{kind}{index}"

    def _gemm_name(self, pe: str, function: str, label: str) -> tuple[str, str]:
        """Name and detail of a function-made GEMM: a recognised non-mac layer, or the GEMM of a
        traced Conv2d/Linear subclass, is named by its module (and converts as a module does);
        any other is named by its function (and stays as it is)."""
        parent = self.stack[-1] if self.stack else ""
        owner = self.modules.get(parent)
        if pe == "mac" and not isinstance(owner, (nn.Conv2d, nn.Linear)):
            return label, function
        detail = type(owner).__name__ if pe == "mac" else self._owner_detail(function)
        return self._recognised_name(pe), detail

    def _owner_detail(self, what: str) -> str:
        parent = self.stack[-1] if self.stack else ""
        owner = type(self.modules[parent]).__name__ if parent in self.modules and parent else ""
        return f"{owner} ({what})" if owner else what

    def _kind(self, x: torch.Tensor, w: torch.Tensor) -> str:
        """The datapath of a GEMM of activations ``x`` and weight-side ``w`` (see module docstring)."""
        wi = self.info(w)
        if not wi.params or self.tagged(w):
            return "mac"
        if self.info(x).binary and (wi.binary or ("sign" in wi.history and "xnor" in weight_kind(w))):
            return "xnor"
        if "pow2" in wi.history and "shift" in weight_kind(w):
            return "shift"
        return "mac"

    def _gemm(self, name: str, pe: str, groups: int, m: int, k: int, n: int, x: torch.Tensor | None,
              w: torch.Tensor | None, detail: str, bias: torch.Tensor | None = None) -> Layer:
        """``groups`` x (``m`` x ``k``) @ (``k`` x ``n``) on ``pe``: a conv if ``x`` is an im2col
        (``F.unfold``) whose geometry gives exactly this GEMM, else a (grouped) linear layer."""
        act_bits, weight_bits = _widths(pe, self.bits)
        params = self.account([t for t in (w, bias) if t is not None])
        common = dict(name=name, pe=pe, act_bits=act_bits, weight_bits=weight_bits, detail=detail,
                      params=params, bias=bias is not None)
        geometry = self.info(x).unfold if x is not None else None
        if geometry is not None and groups == 1:
            # k spans one image's patch; more unfolded channels than that are images folded into
            # the channels (AdderNet's authors unfold x.view(1, -1, h, w))
            images, rest = divmod(geometry.channels * geometry.kernel[0] * geometry.kernel[1], k) if k else (0, 1)
            if not rest and images and geometry.channels % images == 0:
                layer = Layer(op="conv", in_ch=geometry.channels // images, in_h=geometry.size[0],
                              in_w=geometry.size[1], out_ch=n, out_h=geometry.out[0], out_w=geometry.out[1],
                              kernel=geometry.kernel, stride=geometry.stride, padding=geometry.padding,
                              batch=geometry.batch * images, dilation=geometry.dilation, **common)
                if layer.macs == m * k * n:
                    return layer
        return Layer(op="linear", in_ch=k * groups, in_h=1, in_w=1, out_ch=n * groups, out_h=1, out_w=1,
                     groups=groups, batch=m, **common)

    def _record_function(self, name: str, args: tuple, kwargs: dict, out: torch.Tensor) -> list[Layer]:
        """The layers one tensor function outside the costed modules makes (most make one)."""
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        xs = tensors[0].shape if tensors else out.shape
        parent = self.stack[-1] if self.stack else ""
        index = self.counter[name] = self.counter.get(name, 0) + 1
        label = f"{parent}.{name}{index}" if parent else f"{name}{index}"
        if name in _GEMM_FUNCTIONS:
            return self._functional_gemm(label, name, args, kwargs, out)
        params = self.account(_tensors(args, kwargs))
        if name in _ELTWISE:
            inputs = sum(1 for t in tensors if t.dim() > 0)
            detail = f"{name}, {inputs} tensor input{'s' if inputs != 1 else ''}"
            layer = self._vector(label, _ELTWISE[name], out.shape, out.shape, detail, params)
        elif name in _ACT_FUNCTIONS:
            layer = self._vector(label, "act", xs, out.shape, name, params)
        elif name in _NORM_FUNCTIONS:
            layer = self._vector(label, "norm", xs, out.shape, name, params)
        elif name == "interpolate":
            mode = _interpolation(args, kwargs)
            taps = _TAPS.get(mode)
            if taps is None:  # area: adaptive average pooling
                _, h, w = _chw(xs)
                _, oh, ow = _chw(out.shape)
                layer = self._vector(label, "avgpool", xs, out.shape, f"interpolate {mode}",
                                     kernel=(max(1, h // oh), max(1, w // ow)))
            else:  # one weighted tap (multiply-accumulate) per input pixel it blends
                layer = self._vector(label, "avgpool", xs, out.shape,
                                     f"interpolate {mode}: {taps} weighted taps per output", kernel=(taps, 1))
        elif name in _POOL_FUNCTIONS:
            _, h, w = _chw(xs)
            shaped = out.shape if out.dim() >= 3 else torch.Size([*out.shape, 1, 1])
            _, oh, ow = _chw(shaped)
            layer = self._vector(label, _POOL_FUNCTIONS[name], xs, shaped, name,
                                 kernel=(max(1, h // oh), max(1, w // ow)))
        else:
            self.uncosted.setdefault(name, []).append(label)
            layer = self._vector(label, "vector", xs, out.shape, name, params)
        return [layer]

    def _functional_gemm(self, label: str, name: str, args: tuple, kwargs: dict,
                         out: torch.Tensor) -> list[Layer]:
        """Convolutions, linear layers, matrix products, einsum and attention called as functions."""
        if name.startswith("conv"):
            x, w = args[0], args[1]
            rest = list(args[2:]) + [None] * 6
            bias = kwargs.get("bias", rest[0])
            stride = kwargs.get("stride", rest[1] if rest[1] is not None else 1)
            padding = kwargs.get("padding", rest[2] if rest[2] is not None else 0)
            transposed = "transpose" in name
            # (bias, stride, padding, dilation or output_padding, groups)
            groups = int(kwargs.get("groups", rest[4] if rest[4] is not None else 1))
            pe = self._kind(x, w) if name == "conv2d" else "mac"
            name_pe, detail = self._gemm_name(pe, name, label)
            dilation = 1 if transposed else kwargs.get("dilation", rest[3] if rest[3] is not None else 1)
            layer = _conv_layer(name_pe, x.shape, w.shape, out.shape, stride, padding, groups, transposed,
                                detail, self.bits, pe, dilation)
            params = self.account([t for t in (w, bias) if isinstance(t, torch.Tensor)])
            return [dataclasses.replace(layer, bias=bias is not None, params=params)]
        if name == "scaled_dot_product_attention":
            q, k, v = args[:3]
            groups = int(math.prod(q.shape[:-2]))
            return self._attention(label, groups, int(q.shape[-2]), int(k.shape[-2]), int(q.shape[-1]),
                                   int(v.shape[-1]), name)
        if name == "einsum":
            return self._einsum(label, args, kwargs, out)
        if name == "linear":
            x, w = args[0], args[1]
            bias = kwargs.get("bias", args[2] if len(args) > 2 else None)
            pe = self._kind(x, w)
            n = int(w.shape[0]) if w.dim() == 2 else 1
            name_pe, detail = self._gemm_name(pe, name, label)
            return [self._gemm(name_pe, pe, 1, int(math.prod(x.shape[:-1])), int(x.shape[-1]), n, x, w,
                               detail, bias)]
        if name == "cdist":  # p != 1: one subtract, multiply and add per element pair (mac)
            x1, x2 = args[0], args[1]
            groups = int(math.prod(out.shape[:-2]))
            return [self._gemm(label, "mac", groups, int(x1.shape[-2]), int(x1.shape[-1]), int(x2.shape[-2]),
                               x1, x2, name)]
        offset = 1 if name in ("addmm", "baddbmm", "addbmm") else 0  # (bias, a, b)
        a, b = args[offset], args[offset + 1]
        bias = args[0] if offset else None
        groups, m, k, n = _matmul_sizes(a.shape, b.shape)
        if name == "addbmm":  # the batch is summed: one GEMM over the concatenated reduction
            groups, k = 1, groups * k
        weight, act = (a, b) if not self.tagged(a) and self.tagged(b) else (b, a)
        if weight is a:  # W @ x: the weight's rows are the output columns
            m, n = n, m
        pe = self._kind(act, weight)
        name_pe, detail = self._gemm_name(pe, name, label)
        return [self._gemm(name_pe, pe, groups, m, k, n, act, weight, detail,
                           bias if isinstance(bias, torch.Tensor) else None)]

    def _einsum(self, label: str, args: tuple, kwargs: dict, out: torch.Tensor) -> list[Layer]:
        """``einsum``: operands contracted left to right, each pair one (grouped) GEMM; a single
        operand that sums an index is a reduction."""
        equation, operands = args[0], list(args[1:])
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = list(operands[0])
        inputs, output = _einsum_labels(equation, [t.dim() for t in operands])
        sizes: dict[str, int] = {}
        for labels, t in zip(inputs, operands):
            sizes.update((c, int(s)) for c, s in zip(labels, t.shape))
        if len(operands) == 1:
            summed = int(math.prod(sizes[c] for c in set(inputs[0]) - set(output)))
            return [self._vector(label, "avgpool", operands[0].shape, out.shape, "einsum: sum",
                                 kernel=(summed, 1))]
        def size(letters: Iterator[str]) -> int:
            return int(math.prod(sizes[c] for c in letters))

        layers = []
        current, tensor = inputs[0], operands[0]
        for step, (labels, other) in enumerate(zip(inputs[1:], operands[1:]), 1):
            later = set(output).union(*inputs[step + 1:])
            keep = [c for c in dict.fromkeys(current + labels) if c in later]
            groups = size(c for c in keep if c in current and c in labels)
            m = size(c for c in keep if c in current and c not in labels)
            n = size(c for c in keep if c in labels and c not in current)
            k = size(c for c in set(current) | set(labels) if c not in keep)
            act, weight = tensor, other
            if not self.tagged(tensor) and self.tagged(other):  # weight on the left
                act, weight, m, n = other, tensor, n, m
            name = label if len(operands) == 2 else f"{label}.{step}"
            layers.append(self._gemm(name, "mac", groups, m, k, n, act, weight, "einsum"))
            current, tensor = "".join(keep), out
        return layers


def _widths(pe: str, bits: int, max_shift: int = DEFAULT_MAX_SHIFT) -> tuple[int, int]:
    """Operand and stored weight width of a ``pe`` conv/linear layer in a network extracted at
    ``bits`` (:func:`contract.operand_bits`), as a one-line error when the kind cannot run it."""
    try:
        return operand_bits(pe, bits, max_shift=max_shift)
    except ContractError as exc:
        raise HwsimError(str(exc)) from None


def _is_costed_leaf(module: nn.Module) -> bool:
    """Modules whose inside the extractor does not look into: it costs them as one layer (or, for
    recurrent layers and attention, as the few layers they are)."""
    if registration_of(module) is not None:
        return True
    if pe_kind_of(module) is not None:  # a Conv2d/Linear subclass with its own forward is traced
        return not _own_forward(module) or quant_widths(module) != (None, None, None)
    if isinstance(module, _NORMS + _ACTS + _POOLS + _FREE_MODULES + _OTHER_CONVS + _SEQUENCE):
        return True
    # a Brevitas-style quantized activation (QuantReLU, QuantIdentity): an activation of its width
    return quant_widths(module)[2] is not None and not isinstance(getattr(module, "weight", None), torch.Tensor)


def _own_forward(module: nn.Module) -> bool:
    """A third-party Conv2d/Linear subclass with its own forward (IR-Net's ``BinarizeConv2d``
    signs its input and weight there): what it computes decides its kind, so it is traced."""
    cls = type(module)
    return getattr(cls, "pe_kind", None) is None and cls.forward not in (nn.Conv2d.forward, nn.Linear.forward)


def _pad2(padding: Any, kernel: Any, dilation: Any) -> tuple[int, int]:
    """A 2-D conv's padding as an int pair (``"same"``: half the dilated kernel; ``"valid"``: 0)."""
    if isinstance(padding, str):
        return tuple(d * (k - 1) // 2 for d, k in zip(_pair(dilation), _pair(kernel))) if padding == "same" else (0, 0)
    return _pair(padding)


def _conv_function(module: nn.Module) -> str:
    """``conv1d``, ``conv3d``, ``conv_transpose2d`` ...: the function a conv module calls."""
    base = next(cls for cls in type(module).__mro__ if cls in _OTHER_CONVS)
    return base.__name__.replace("ConvTranspose", "conv_transpose").replace("Conv", "conv")


def _conv_layer(name: str, xs: torch.Size, ws: torch.Size, ys: torch.Size, stride: Any, padding: Any,
                groups: int, transposed: bool, detail: str, bits: int, pe: str = "mac", dilation: Any = 1) -> Layer:
    """A 1-, 2- or 3-D (transposed) convolution as the 2-D conv GEMM it is.

    1-D: a ``1 x L`` image. 3-D: depth folds into height (``in_h = D*H``, kernel ``kd*kh x kw``),
    which keeps the GEMM (M, K, N), the weights and the tensor sizes exact. Transposed: each input
    pixel times the ``Cin/g x Cout/g*k`` weight (M = pixels, K = ``Cin/g``, N = ``Cout/g*prod(k)``),
    whose products accumulate into the overlapping output windows (col2im); its output, as a
    GEMM, is the ``Cout*prod(k)`` columns per input pixel. Dilation does not change the GEMM, only
    the input span a 2-D conv's taps read (:attr:`Layer.dilation`; kept for 2-D convs only).
    """
    nd = len(ws) - 2
    batched = len(xs) == nd + 2
    lead = int(xs[0]) if batched else 1
    spatial_in = [int(s) for s in xs[-nd:]]
    spatial_out = [int(s) for s in ys[-nd:]]
    kernel = [int(k) for k in ws[2:]]
    cin = int(xs[-nd - 1])
    if isinstance(stride, int):
        stride = [stride] * nd
    if isinstance(padding, str):
        padding = [(k - 1) // 2 if padding == "same" else 0 for k in kernel]
    elif isinstance(padding, int):
        padding = [padding] * nd

    def fold(values: list[int]) -> tuple[int, int]:
        return (1, values[0]) if nd == 1 else (values[0], values[1]) if nd == 2 else (values[0] * values[1], values[2])

    act_bits, weight_bits = _widths(pe, bits)
    common = dict(name=name, op="conv", pe=pe, act_bits=act_bits, weight_bits=weight_bits, detail=detail,
                  batch=lead, groups=groups, in_ch=cin)
    (h, w), (oh, ow) = fold(spatial_in), fold(spatial_out)
    if transposed:
        cout = int(ws[1]) * groups
        return Layer(in_h=h, in_w=w, out_ch=cout * math.prod(kernel), out_h=h, out_w=w, **common)
    def plane(values: Any) -> tuple[int, int]:  # stride/padding across the folded image
        values = [int(v) for v in values]
        return (1 if nd == 1 else values[-2], values[-1]) if nd < 3 else (values[1], values[2])

    kept = _pair(dilation) if nd == 2 else (1, 1)
    return Layer(in_h=h, in_w=w, out_ch=int(ws[0]), out_h=oh, out_w=ow, kernel=fold(kernel),
                 stride=plane(stride), padding=(0, int(padding[0])) if nd == 1 else plane(padding),
                 dilation=kept, **common)


def _interpolation(args: tuple, kwargs: dict) -> str:
    return kwargs.get("mode", args[3] if len(args) > 3 else "nearest")


def _norm_order(rest: tuple, kwargs: dict, key: str, default: float) -> float:
    """The ``p``/``ord`` of a norm or distance call (first of ``rest``, else ``kwargs[key]``)."""
    value = kwargs.get(key, rest[0] if rest else default)
    return float(value) if isinstance(value, (int, float)) else default


def _opposite(values: tuple) -> bool:
    """Two numbers ``a`` and ``-a`` (``where(x >= 0, 1, -1)``): a sign."""
    if len(values) != 2:
        return False
    a, b = (v.item() if isinstance(v, torch.Tensor) and v.numel() == 1 else v for v in values)
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == -b != 0


def _stand_in(name: str, args: tuple, kwargs: dict) -> torch.Tensor | None:
    """An uninitialised output of a functional ``conv1d/2d/3d`` or ``linear`` (what the costed
    modules give too: values are never read for cost), or None to run the function."""
    if name == "linear":
        x, w = args[0], args[1]
        if x.shape[-1] != w.shape[-1]:
            return None  # torch's own error
        return torch.empty((*x.shape[:-1], *w.shape[:-1]), dtype=x.dtype, device=x.device)
    if name not in ("conv1d", "conv2d", "conv3d"):
        return None
    x, w = args[0], args[1]
    nd = w.dim() - 2
    rest = list(args[3:]) + [None] * 4
    stride, padding, dilation = (kwargs.get(key, rest[i]) for i, key in enumerate(("stride", "padding", "dilation")))
    groups = kwargs.get("groups", rest[3]) or 1
    if x.dim() not in (nd + 1, nd + 2) or x.shape[-nd - 1] != w.shape[1] * groups:
        return None
    expand = lambda v, default: [default] * nd if v is None else [v] * nd if isinstance(v, int) else list(v)  # noqa: E731
    stride, dilation = expand(stride, 1), expand(dilation, 1)
    if isinstance(padding, str):
        if padding == "same":
            return torch.empty((*x.shape[:-nd - 1], w.shape[0], *x.shape[-nd:]), dtype=x.dtype, device=x.device)
        padding = 0
    padding = expand(padding, 0)
    try:
        out = [conv_out_size(int(n), int(k), s, p, d)
               for n, k, s, p, d in zip(x.shape[-nd:], w.shape[2:], stride, padding, dilation)]
    except ContractError:
        return None  # torch's own error
    return torch.empty((*x.shape[:-nd - 1], w.shape[0], *out), dtype=x.dtype, device=x.device)


def _broadcast(a: torch.Size, b: torch.Size) -> torch.Size:
    """torch's broadcast of two shapes (``torch.broadcast_shapes`` imports sympy on first use,
    over a second; see the module docstring); a RuntimeError as torch's if they do not."""
    width = max(len(a), len(b))
    a, b = (1,) * (width - len(a)) + tuple(a), (1,) * (width - len(b)) + tuple(b)
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
        raise RuntimeError(f"shapes {list(a)} and {list(b)} do not broadcast")
    return torch.Size(max(x, y) for x, y in zip(a, b))


def _matmul_sizes(a: torch.Size, b: torch.Size) -> tuple[int, int, int, int]:
    """``(groups, m, k, n)`` of ``a @ b`` with torch's broadcasting: a batch axis both operands
    span is a group, one only ``a`` spans adds rows, one only ``b`` spans adds columns."""
    a_dims = [1, *a] if len(a) == 1 else list(a)
    b_dims = [*b, 1] if len(b) == 1 else list(b)
    groups, m, k, n = 1, a_dims[-2], a_dims[-1], b_dims[-1]
    batch_a, batch_b = a_dims[:-2], b_dims[:-2]
    width = max(len(batch_a), len(batch_b))
    for x, y in zip([1] * (width - len(batch_a)) + batch_a, [1] * (width - len(batch_b)) + batch_b):
        if x > 1 and y > 1:
            groups *= x
        elif x > 1:
            m *= x
        else:
            n *= y
    return int(groups), int(m), int(k), int(n)


def _einsum_labels(equation: str, ndims: list[int]) -> tuple[list[str], str]:
    """Index letters of each operand and of the output, ``...`` spelled out with spare letters."""
    equation = equation.replace(" ", "")
    lhs, _, rhs = equation.partition("->")
    parts = lhs.split(",")
    spare = [c for c in string.ascii_letters if c not in equation]
    ellipsis = "".join(spare[:max((n - len(p.replace("...", "")) for p, n in zip(parts, ndims)), default=0)])
    labels = []
    for part, n in zip(parts, ndims):
        width = n - len(part.replace("...", ""))
        labels.append(part.replace("...", ellipsis[len(ellipsis) - width:] if width else ""))
    if "->" in equation:
        output = rhs.replace("...", ellipsis)
    else:
        counts = "".join(labels)
        output = ellipsis + "".join(sorted(c for c in set(counts) if counts.count(c) == 1 and c not in ellipsis))
    return labels, output


def _check_channels(module: nn.Module, got: int, want: int) -> None:
    if got != want:
        raise RuntimeError(f"{type(module).__name__} expects {want} input channels, got {got}")


def _conv_shape(module: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    _check_channels(module, int(x.shape[1]), module.in_channels)
    dilation = _pair(getattr(module, "dilation", 1))
    kernel, stride = _pair(module.kernel_size), _pair(module.stride)
    if isinstance(module.padding, str):
        padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel)) if module.padding == "same" else (0, 0)
    else:
        padding = _pair(module.padding)
    out = [conv_out_size(int(size), k, s, p, d)
           for size, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation)]
    return torch.empty((x.shape[0], module.out_channels, *out), dtype=x.dtype, device=x.device)


def _linear_shape(module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    _check_channels(module, int(x.shape[-1]), module.in_features)
    return torch.empty((*x.shape[:-1], module.out_features), dtype=x.dtype, device=x.device)


def _same_shape(module: nn.Module, x: torch.Tensor, *_: Any) -> torch.Tensor:
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        _check_channels(module, int(x.shape[1]), module.num_features)
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


def _shape_forward(module: nn.Module) -> Callable | None:
    """A forward that returns an uninitialized tensor of the output shape without computing, for
    the costed leaves whose real forward does arithmetic (convolutions, adder unfolds, batch
    norm); None: run it. ``torch.empty``, not zeros: most such outputs are only ever read for their
    shape, and zeroing them was two thirds of GhostNet's extraction time. Values are unspecified,
    so control flow that depends on activation values follows an arbitrary branch (as it would
    on zeros, which are no real data either)."""
    if registration_of(module) is not None:
        return None
    if isinstance(module, nn.Conv2d):
        return lambda x: _conv_shape(module, x)
    if isinstance(module, nn.Linear):
        return lambda x: _linear_shape(module, x)
    if isinstance(module, _NORMS + _ACTS):
        return lambda x, *rest: _same_shape(module, x, *rest)
    return None


@contextlib.contextmanager
def _shape_only(leaves: set[nn.Module]) -> Iterator[None]:
    """Temporarily give the costed leaves shape-only forwards (restored on exit)."""
    patched = []
    for module in leaves:
        fast = _shape_forward(module)
        if fast is not None:
            patched.append((module, module.__dict__.get("forward")))
            module.forward = fast
    try:
        yield
    finally:
        for module, own in patched:
            del module.forward
            if own is not None:
                module.forward = own


def extract(net: nn.Module, input_shape: tuple[int, ...], *, bits: int = 8, name: str = "") -> Workload:
    """Record the layers ``net`` executes on an input of ``input_shape`` (batch first).

    ``bits`` is the operand width given to every non-binary layer (binary ``xnor`` layers get 1).
    The pass feeds zeros and lets conv, linear, normalization and activation modules return zeros
    of their output shape (no arithmetic there, weights untouched); a network whose forward fails
    on those stand-in outputs falls back to a full forward pass on zeros.
    """
    if not isinstance(net, nn.Module):
        raise HwsimError(f"expected a torch.nn.Module, got {type(net).__name__}")
    if len(input_shape) < 2 or any(not isinstance(d, int) or d <= 0 for d in input_shape):
        raise HwsimError(f"input shape must be positive integers with the batch first, not {tuple(input_shape)}")
    modules = list(net.named_modules())
    recorder = _Recorder(bits, {m for _, m in modules if _is_costed_leaf(m)}, dict(modules))
    handles = []
    for mod_name, module in modules:
        handles.append(module.register_forward_pre_hook(
            lambda m, i, k, n=mod_name: recorder.pre_hook(n, m), with_kwargs=True))
        handles.append(module.register_forward_hook(
            lambda m, i, k, o, n=mod_name: recorder.post_hook(n, m, i, k, o), with_kwargs=True))
    try:
        _run(net, input_shape, recorder)
    finally:
        for handle in handles:
            handle.remove()
    layers = _without_dead(recorder.layers, recorder.dead, recorder.outputs)
    warnings = [f"torch function '{func}' has no cost model; {len(labels)} "
                f"{'call is' if len(labels) == 1 else 'calls are'} costed as generic vector work "
                f"(one op per output element), e.g. {labels[0]}"
                for func, labels in recorder.uncosted.items()]
    unused = _unused_parameters(modules, recorder)
    if unused and load_entry_points():  # packages that register their layers: trace again
        return extract(net, input_shape, bits=bits, name=name)
    warnings += unused
    if not any(layer.is_compute for layer in layers):
        raise HwsimError(f"network {name or type(net).__name__!r} has no conv or linear layer to map")
    return Workload(name=name or type(net).__name__, input_shape=tuple(input_shape),
                    layers=tuple(layers), warnings=tuple(warnings))


def _unused_parameters(modules: list[tuple[str, nn.Module]], recorder: _Recorder) -> list[str]:
    """One warning per module class whose parameters no costed layer used, naming a module and
    how to register the class."""
    by_class: dict[type, list[tuple[str, int]]] = {}
    for mod_name, module in modules:
        if module in recorder.costed:
            continue
        unused = sum(p.numel() for p in module.parameters(recurse=False) if id(p) not in recorder.accounted)
        if unused:
            by_class.setdefault(type(module), []).append((mod_name or type(module).__name__, unused))
    warnings = []
    for cls, found in by_class.items():
        count = sum(n for _, n in found)
        more = f" and {len(found) - 1} more" if len(found) > 1 else ""
        warnings.append(f"{count} parameters of {cls.__name__} module {found[0][0]!r}{more} are used by no "
                        f"costed layer (not in the workload); if {cls.__name__} computes a conv or linear "
                        f"layer, register it: hwsim.register_layer({cls.__name__}, kind='adder'|'xnor'|"
                        "'shift'|'mac')")
    return warnings


def _without_dead(layers: list[Layer], dead: set[str], outputs: tuple[str, ...]) -> list[Layer]:
    """``layers`` without the ones that fed only cancelled straight-through terms: a ``dead``
    layer that nothing kept reads (and is no network output) goes, then the same for its inputs."""
    if not dead:
        return layers
    readers: dict[str, int] = {}
    for layer in layers:
        for source in layer.inputs or ():
            readers[source] = readers.get(source, 0) + 1
    by_name = {layer.name: layer for layer in layers}
    removed: set[str] = set()
    todo = list(dead)
    while todo:
        name = todo.pop()
        if name in removed or name not in by_name or readers.get(name, 0) or name in outputs:
            continue
        removed.add(name)
        for source in by_name[name].inputs or ():
            readers[source] -= 1
            todo.append(source)
    return [layer for layer in layers if layer.name not in removed]


def _run(net: nn.Module, input_shape: tuple[int, ...], recorder: _Recorder) -> None:
    """One pass of ``net`` under ``recorder`` in eval mode without gradients (each module's mode
    restored), shape-only leaves first, a full pass on zeros if that fails. Denormals flush to
    zero meanwhile: stand-in outputs hold arbitrary bits, and arithmetic on denormals is ~100x
    slower (torch has no getter for the flag; it is left off afterwards, torch's default)."""
    modes = [(m, m.training) for m in net.modules()]
    for module, _ in modes:  # eval mode, set flag by flag so each module's own mode comes back
        module.training = False
    flush = torch.set_flush_denormal(True)  # stand-in outputs hold arbitrary bits: no slow denormals
    try:
        with torch.no_grad():
            device = _device(net)
            x = torch.zeros(input_shape, device=device)  # made outside the recorder: not a layer
            recorder.tag(x, (NETWORK_INPUT,))
            try:
                with _shape_only(recorder.leaves), recorder:
                    recorder.outputs = recorder.sources(net(x))
            except (NotImplementedError, RuntimeError):
                _reset(recorder)
                x = torch.zeros(input_shape, device=device)  # the failed pass may have written to x
                recorder.tag(x, (NETWORK_INPUT,))
                with recorder:
                    recorder.outputs = recorder.sources(net(x))
    except Exception as exc:  # a user's network failing on the given shape is bad input
        raise HwsimError(f"forward pass on input shape {tuple(input_shape)} failed: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    finally:
        if flush:
            torch.set_flush_denormal(False)
        for module, mode in modes:
            module.training = mode


def _device(net: nn.Module) -> torch.device:
    """Where ``net`` keeps its tensors (its first parameter or buffer; the CPU if it has none)."""
    first = next(itertools.chain(net.parameters(), net.buffers()), None)
    return torch.device("cpu") if first is None else first.device


def _reset(recorder: _Recorder) -> None:
    recorder.layers.clear()
    recorder.uncosted.clear()
    recorder.stack.clear()
    recorder.inside_leaf = 0
    recorder.counter.clear()
    recorder.costed.clear()
    recorder.tags.clear()
    recorder.infos.clear()
    recorder.roots.clear()
    recorder.accounted.clear()
    recorder.dead.clear()
    recorder.outers.clear()


def retarget(workload: Workload, pe: str, bits: int, *, keep_first_last: bool = True) -> Workload:
    """The workload of the same network converted to PE kind ``pe``, for a ``pe`` array of
    operand width ``bits``, without building, converting or running the network again.

    ``workload`` is what :func:`extract` gave for a network ``net`` or for any conversion
    ``models.convert.convert(net, ...)`` of it; the result is, layer by layer and field by
    field, what ``extract(convert(net, pe, keep_first_last=keep_first_last), bits=b)`` gives,
    with ``b`` = :func:`contract.layer_bits` of ``pe`` and ``bits`` (as the CLI extracts):

    * conv/linear modules become ``pe`` (``detail`` the class :func:`~models.convert.convert`
      puts there), except, with ``keep_first_last``, the first and the last one in execution
      order, which become (or stay) ``mac``, as ``convert`` keeps them;
    * widths: xnor layers 1-bit operands and weights; shift layers ``b``-bit operands and the
      shift-weight code (:func:`contract.operand_bits`; a layer that already was shift
      keeps its code width, which depends only on its own ``max_shift``); every other layer,
      functional ``F.conv2d``/``matmul`` and vector work included, ``b`` bits;
    * functional conv/matmul layers, 1-D/3-D/transposed convolutions, recurrent layers and
      attention stay ``mac`` (``convert`` changes Conv2d/Linear modules only); shapes, MACs,
      parameters, names, order and warnings are unchanged.

    Two differences are real and not reproduced:

    * ``convert(net, "xnor")`` also replaces by Identity every ReLU module whose output only
      binary layers read, so its workload lacks those ``act`` layers; ``retarget`` to xnor keeps
      them, and ``retarget`` from such an xnor conversion to another kind cannot bring them back
      (the fresh conversion has them).
    * The CLI does not convert a network to its own native kind; ``retarget`` always converts.
      For a network of mixed kinds (Bi-Real Net's real 1x1 shortcut convolutions) and ``pe`` its
      native kind, extract the network as built instead.

    Raises :class:`HwsimError` for an unknown ``pe`` or a width the kind does not support.

    A workload with layers of a kind other than mac holds its authors' choices: then only those
    layers become ``pe`` and its mac layers stay mac (``keep_first_last`` does not apply), as
    :func:`models.convert.convert` does with ``as_written``.
    """
    if pe not in PE_LAYERS:
        raise HwsimError(f"unknown PE kind {pe!r}; choose one of {', '.join(PE_LAYERS)}")
    other_bits = layer_bits(pe, bits)
    _widths(pe, other_bits)  # a width the kind cannot run fails here, naming the kind asked for
    order = list(dict.fromkeys(layer.name for layer in workload.layers if _is_module_gemm(layer)))
    written = any(layer.pe != "mac" for layer in workload.layers if layer.is_compute)
    if written:
        kept = {layer.name for layer in workload.layers if layer.pe == "mac"}
    else:
        kept = {order[0], order[-1]} if keep_first_last and order else set()
    layers = []
    for layer in workload.layers:
        if not _is_module_gemm(layer) and not (written and layer.is_compute and layer.pe != "mac"):
            layers.append(dataclasses.replace(layer, act_bits=other_bits, weight_bits=other_bits))
            continue
        target = "mac" if layer.name in kept else pe
        if target == layer.pe:  # convert keeps the module itself
            act_bits, weight_bits = _widths(target, other_bits)
            if target == "shift":
                weight_bits = layer.weight_bits
            layers.append(dataclasses.replace(layer, act_bits=act_bits, weight_bits=weight_bits))
        else:
            act_bits, weight_bits = _widths(target, other_bits)
            cls = PE_LAYERS[target][0 if layer.op == "conv" else 1]
            layers.append(dataclasses.replace(layer, pe=target, act_bits=act_bits,
                                              weight_bits=weight_bits, detail=cls.__name__))
    return dataclasses.replace(workload, layers=tuple(layers))


def _is_module_gemm(layer: Layer) -> bool:
    """A conv/linear layer that a conversion changes: one a Conv2d/Linear module (or a recognised
    or registered layer) computes; functional GEMMs, 1-D/3-D/transposed convolutions, recurrent
    layers and attention are named by a :data:`_FIXED` prefix and stay as they are."""
    return layer.is_compute and layer.detail.split(":")[0] not in _FIXED

"""Turn any ``nn.Module`` and input shape into a :class:`~hwsim.workload.Workload`.

One forward pass in which the costed layers only produce zero tensors of their output shape
records every layer the hardware executes: module hooks catch convolutions, linear layers,
normalization, activations and pooling (with their hyper-parameters), and a torch function mode
catches what happens outside those modules (residual adds, squeeze-excite multiplies, functional
activations and pooling).

The pass runs on ordinary CPU tensors, not on shape-only "meta" tensors: torch computes meta
shapes of ``cat``, ``add``, ``mul``, pooling ... with Python reference kernels (``torch._refs``)
wrapped in ``torch._disable_dynamo``, whose first call imports ``torch._dynamo`` (with sympy and
``torch.fx``), 1.3 s or more -- far longer than the pass. What is left to compute outside the
costed layers (element-wise work and pooling on batch-1 activations) takes milliseconds. Pure data
movement (views, slices, concatenation, padding) costs nothing and is left out on purpose; any
other tensor function is costed as generic vector work and named in ``Workload.warnings`` so
nothing is dropped silently. No torch object survives into the Workload.

Data-flow edges: every tensor the pass makes is tagged (by identity, through a weak reference)
with the layers that produced its data; free functions pass their inputs' tags on (a
concatenation carries both producers), and each recorded layer's :attr:`Layer.inputs` lists the
tags of the tensors it reads (:data:`~hwsim.workload.NETWORK_INPUT` for the network's input).
Parameters and tensors made from nothing carry no tag.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from contract import DEFAULT_MAX_SHIFT, ContractError, conv_out_size, layer_bits, operand_bits
from hwsim.errors import HwsimError
from hwsim.workload import NETWORK_INPUT, Layer, Workload
from models.layers import PE_LAYERS, pe_kind_of

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)
_ACTS = (nn.ReLU, nn.ReLU6, nn.Hardsigmoid, nn.Hardswish, nn.Sigmoid, nn.Tanh, nn.SiLU, nn.GELU,
         nn.Hardtanh, nn.LeakyReLU, nn.PReLU, nn.Softmax)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_FREE_MODULES = (nn.Dropout, nn.Identity, nn.Flatten, nn.Unflatten)

#: Tensor functions that only move or view data: free on the accelerator.
FREE_FUNCTIONS = frozenset("""
    cat concat stack split chunk unbind narrow view reshape flatten unflatten permute transpose t
    contiguous squeeze unsqueeze expand expand_as getitem pad clone detach to float half double
    type dropout size dim numel get repeat_interleave zeros_like ones_like new_zeros new_ones
    new_empty empty_like setitem copy_ requires_grad_ roll repeat tile flip
""".split())
#: Free functions whose output holds none of their inputs' data (no data-flow edge).
_CREATORS = frozenset("zeros_like ones_like new_zeros new_ones new_empty empty_like size dim numel".split())
_ACT_FUNCTIONS = frozenset("""
    relu relu6 hardtanh hardsigmoid hardswish sigmoid tanh silu gelu leaky_relu clamp clip sign
    softmax elu
""".split())
_ELTWISE = {"add": "add", "sub": "add", "rsub": "add", "mul": "mul", "div": "mul", "truediv": "mul"}
_GEMM_FUNCTIONS = frozenset(("conv2d", "linear", "matmul", "mm", "bmm"))
_POOL_FUNCTIONS = {"adaptive_avg_pool2d": "avgpool", "avg_pool2d": "avgpool", "mean": "avgpool",
                   "max_pool2d": "maxpool", "adaptive_max_pool2d": "maxpool"}


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


class _Recorder(TorchFunctionMode):
    """Collects layers from module hooks and from tensor functions outside known modules."""

    def __init__(self, bits: int, leaves: set[nn.Module]) -> None:
        super().__init__()
        self.bits = bits
        self.leaves = leaves
        self.layers: list[Layer] = []
        self.uncosted: dict[str, list[str]] = {}  # torch function -> labels of the layers it made
        self.stack: list[str] = []
        self.inside_leaf = 0
        self.counter: dict[str, int] = {}
        self.costed: set[nn.Module] = set()
        self.tags: dict[int, tuple[weakref.ref, tuple[str, ...]]] = {}  # id(tensor) -> producers

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
        """Mark the tensors in ``values`` (a tensor or a tuple/list of them) as made by ``producers``."""
        for value in values if isinstance(values, (tuple, list)) else (values,):
            if isinstance(value, torch.Tensor):
                self.tags[id(value)] = (weakref.ref(value), producers)

    # --- module hooks -------------------------------------------------------------------------
    def pre_hook(self, name: str, module: nn.Module) -> None:
        self.stack.append(name)
        if module in self.leaves:
            self.inside_leaf += 1

    def post_hook(self, name: str, module: nn.Module, inputs: tuple, output: Any) -> None:
        self.stack.pop()
        if module not in self.leaves:
            return
        self.inside_leaf -= 1
        sources = self.sources(inputs)
        if isinstance(module, _FREE_MODULES):
            self.tag(output, sources)
            return
        x = inputs[0]
        y = output[0] if isinstance(output, tuple) else output
        self.costed.add(module)
        layer = self._module_layer(name or type(module).__name__, module, x.shape, y.shape)
        self.layers.append(dataclasses.replace(layer, inputs=sources))
        self.tag(output, (layer.name,))

    def _module_layer(self, name: str, module: nn.Module, xs: torch.Size, ys: torch.Size) -> Layer:
        cin, h, w = _chw(xs)
        cout, oh, ow = _chw(ys)
        params = sum(p.numel() for p in module.parameters(recurse=False))
        pe = pe_kind_of(module)
        if pe is not None:
            has_bias = getattr(module, "bias", None) is not None
            act_bits, weight_bits = _widths(pe, self.bits, getattr(module, "max_shift", DEFAULT_MAX_SHIFT))
            common = dict(name=name, pe=pe, act_bits=act_bits, weight_bits=weight_bits, bias=has_bias,
                          detail=type(module).__name__)
            if isinstance(module, nn.Conv2d):
                layer = Layer(op="conv", in_ch=cin, in_h=h, in_w=w, out_ch=cout, out_h=oh, out_w=ow,
                              kernel=_pair(module.kernel_size), stride=_pair(module.stride),
                              padding=_pair(module.padding), groups=module.groups, batch=int(xs[0]),
                              **common)
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

    def _vector(self, name: str, op: str, xs: torch.Size, ys: torch.Size, detail: str,
                params: int = 0, kernel: tuple[int, int] = (1, 1)) -> Layer:
        cin, h, w = _chw(xs)
        cout, oh, ow = _chw(ys)
        return Layer(name=name, op=op, in_ch=cin, in_h=h, in_w=w, out_ch=cout, out_h=oh, out_w=ow,
                     kernel=kernel, batch=int(xs[0]) if len(xs) else 1, act_bits=self.bits,
                     weight_bits=self.bits, params=params, detail=detail)

    # --- tensor functions outside known modules -------------------------------------------------
    def __torch_function__(self, func: Callable, types: tuple, args: tuple = (), kwargs: dict | None = None):
        out = func(*args, **(kwargs or {}))
        if self.inside_leaf:
            return out
        name = _base_name(func)
        if name in FREE_FUNCTIONS:
            if name not in _CREATORS:  # in-place copies (setitem, copy_) tag their target
                self.tag(out if out is not None else args[:1], self.sources((args, kwargs)))
        elif isinstance(out, torch.Tensor) and out.dim() > 0:
            layer = dataclasses.replace(self._record_function(func, name, args, out),
                                        inputs=self.sources((args, kwargs)))
            self.layers.append(layer)
            self.tag(out, (layer.name,))
        return out

    def _record_function(self, func: Callable, name: str, args: tuple, out: torch.Tensor) -> Layer:
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        xs = tensors[0].shape if tensors else out.shape
        parent = self.stack[-1] if self.stack else ""
        index = self.counter[name] = self.counter.get(name, 0) + 1
        label = f"{parent}.{name}{index}" if parent else f"{name}{index}"
        if name in _GEMM_FUNCTIONS:
            layer = self._functional_gemm(label, name, args, out)
        elif name in _ELTWISE:
            inputs = sum(1 for t in tensors if t.dim() > 0)
            detail = f"{name}, {inputs} tensor input{'s' if inputs != 1 else ''}"
            layer = self._vector(label, _ELTWISE[name], out.shape, out.shape, detail)
        elif name in _ACT_FUNCTIONS:
            layer = self._vector(label, "act", xs, out.shape, name)
        elif name in _POOL_FUNCTIONS:
            _, h, w = _chw(xs)
            _, oh, ow = _chw(out.shape if out.dim() >= 3 else torch.Size([*out.shape, 1, 1]))
            layer = self._vector(label, _POOL_FUNCTIONS[name], xs,
                                 out.shape if out.dim() >= 3 else torch.Size([*out.shape, 1, 1]),
                                 name, kernel=(max(1, h // oh), max(1, w // ow)))
        else:
            self.uncosted.setdefault(name, []).append(label)
            layer = self._vector(label, "vector", xs, out.shape, name)
        return layer

    def _functional_gemm(self, label: str, name: str, args: tuple, out: torch.Tensor) -> Layer:
        """``F.conv2d``/``F.linear``/``matmul`` called outside a module: a ``mac`` compute layer."""
        x, w = args[0], args[1]
        common = dict(name=label, pe="mac", act_bits=self.bits, weight_bits=self.bits, detail=name)
        if name == "conv2d":
            extra = list(args[3:]) + [1, 0, 1, 1][len(args[3:]):]
            stride, padding, _, groups = extra[:4]
            cin, h, w_in = _chw(x.shape)
            cout, oh, ow = _chw(out.shape)
            return Layer(op="conv", in_ch=cin, in_h=h, in_w=w_in, out_ch=cout, out_h=oh, out_w=ow,
                         kernel=(int(w.shape[2]), int(w.shape[3])), stride=_pair(stride),
                         padding=_pair(padding) if not isinstance(padding, str)
                         else ((w.shape[2] // 2, w.shape[3] // 2) if padding == "same" else (0, 0)),
                         groups=int(groups), batch=int(x.shape[0]), **common)
        k, n = int(x.shape[-1]), int(out.shape[-1])
        return Layer(op="linear", in_ch=k, in_h=1, in_w=1, out_ch=n, out_h=1, out_w=1,
                     batch=int(math.prod(out.shape[:-1])), **common)


def _widths(pe: str, bits: int, max_shift: int = DEFAULT_MAX_SHIFT) -> tuple[int, int]:
    """Operand and stored weight width of a ``pe`` conv/linear layer in a network extracted at
    ``bits`` (:func:`contract.operand_bits`), as a one-line error when the kind cannot run it."""
    try:
        return operand_bits(pe, bits, max_shift=max_shift)
    except ContractError as exc:
        raise HwsimError(str(exc)) from None


def _is_costed_leaf(module: nn.Module) -> bool:
    """Modules whose inside the extractor does not look into: it costs them as one layer."""
    return pe_kind_of(module) is not None or isinstance(module, _NORMS + _ACTS + _POOLS + _FREE_MODULES)


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
    recorder = _Recorder(bits, {m for _, m in modules if _is_costed_leaf(m)})
    handles = []
    for mod_name, module in modules:
        handles.append(module.register_forward_pre_hook(
            lambda m, i, n=mod_name: recorder.pre_hook(n, m)))
        handles.append(module.register_forward_hook(
            lambda m, i, o, n=mod_name: recorder.post_hook(n, m, i, o)))
    try:
        _run(net, input_shape, recorder)
    finally:
        for handle in handles:
            handle.remove()
    layers = recorder.layers
    uncosted = sum(p.numel() for _, m in modules if m not in recorder.costed
                   for p in m.parameters(recurse=False))
    warnings = [f"torch function '{func}' has no cost model; {len(labels)} "
                f"{'call is' if len(labels) == 1 else 'calls are'} costed as generic vector work "
                f"(one op per output element), e.g. {labels[0]}"
                for func, labels in recorder.uncosted.items()]
    if uncosted:
        warnings.append(f"{uncosted} parameters are not in the workload's parameter count "
                        "(they belong to no conv, linear or norm module)")
    if not any(layer.is_compute for layer in layers):
        raise HwsimError(f"network {name or type(net).__name__!r} has no conv or linear layer to map")
    return Workload(name=name or type(net).__name__, input_shape=tuple(input_shape),
                    layers=tuple(layers), warnings=tuple(warnings))


def _run(net: nn.Module, input_shape: tuple[int, ...], recorder: _Recorder) -> None:
    modes = [(m, m.training) for m in net.modules()]
    for module, _ in modes:  # eval mode, set flag by flag so each module's own mode comes back
        module.training = False
    try:
        with torch.no_grad():
            device = _device(net)
            x = torch.zeros(input_shape, device=device)  # made outside the recorder: not a layer
            recorder.tag(x, (NETWORK_INPUT,))
            try:
                with _shape_only(recorder.leaves), recorder:
                    net(x)
            except (NotImplementedError, RuntimeError):
                _reset(recorder)
                x = torch.zeros(input_shape, device=device)  # the failed pass may have written to x
                recorder.tag(x, (NETWORK_INPUT,))
                with recorder:
                    net(x)
    except Exception as exc:  # a user's network failing on the given shape is bad input
        raise HwsimError(f"forward pass on input shape {tuple(input_shape)} failed: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    finally:
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
    * functional conv/matmul layers stay ``mac`` (``convert`` changes modules only); shapes,
      MACs, parameters, names, order and warnings are unchanged.

    Two differences are real and not reproduced:

    * ``convert(net, "xnor")`` also replaces by Identity every ReLU module whose output only
      binary layers read, so its workload lacks those ``act`` layers; ``retarget`` to xnor keeps
      them, and ``retarget`` from such an xnor conversion to another kind cannot bring them back
      (the fresh conversion has them).
    * The CLI does not convert a network to its own native kind; ``retarget`` always converts.
      For a network of mixed kinds (Bi-Real Net's real 1x1 shortcut convolutions) and ``pe`` its
      native kind, extract the network as built instead.

    Raises :class:`HwsimError` for an unknown ``pe`` or a width the kind does not support.
    """
    if pe not in PE_LAYERS:
        raise HwsimError(f"unknown PE kind {pe!r}; choose one of {', '.join(PE_LAYERS)}")
    other_bits = layer_bits(pe, bits)
    _widths(pe, other_bits)  # a width the kind cannot run fails here, naming the kind asked for
    order = list(dict.fromkeys(layer.name for layer in workload.layers if _is_module_gemm(layer)))
    kept = {order[0], order[-1]} if keep_first_last and order else set()
    layers = []
    for layer in workload.layers:
        if not _is_module_gemm(layer):
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
    """A conv/linear layer that a module computes (functional ones are named by their function)."""
    return layer.is_compute and layer.detail not in _GEMM_FUNCTIONS

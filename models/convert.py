"""Convert a network to another processing-element (PE) kind, layer by layer.

The AdderNet (Chen et al., CVPR 2020), BNN/XNOR-Net/Bi-Real and DeepShift (Elhoushi et al.,
2021) papers all keep the first convolution (the one that sees the image) and the final
classifier at full precision, because those two layers are small in cost but large in accuracy
impact; :func:`convert` follows that policy by default.

For ``xnor`` a ReLU whose output goes only to binary layers is replaced by ``nn.Identity``, as
binary networks do: the binary layer's own sign is the activation, and ``sign(relu(y))`` would
be +1 everywhere (a constant input). "Only" is meant strictly: a ReLU whose output is also read
by any other module or by a torch function outside a module (a residual add, a ``torch.cat``)
stays, because there its real values matter.

With ``as_written``, a network that already has layers of a kind other than ``mac`` keeps its
authors' choices: only those layers change kind, and its plain conv/linear layers (Bi-Real's
real-valued 1x1 downsample convolutions, the first conv, the classifier) stay ``mac``. A plain
network converts as without it.
"""

from __future__ import annotations

import contextlib
import copy
import weakref
from collections.abc import Callable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from models.layers import PE_LAYERS, make_like, pe_kind_of


def convert(net: nn.Module, pe: str, *, input_shape: tuple[int, ...] | None = None,
            keep_first_last: bool = True, as_written: bool = False) -> nn.Module:
    """Return a deep copy of ``net`` with every conv/linear layer of any PE kind made ``pe``.

    With ``keep_first_last`` the first and the last conv/linear layer *in forward execution
    order* become (or stay) plain ``mac`` layers. Registration order is not a reliable stand-in
    (a user network may define its classifier first), so the order is observed with forward
    pre-hooks on one pass over zeros of ``input_shape`` (batch first, e.g. ``(1, 3, 224, 224)``),
    which is then required. ``net`` itself is not modified.

    With ``as_written`` and a network that has non-``mac`` layers, only those change kind (see
    the module docstring); ``keep_first_last`` and ``input_shape`` then matter only for xnor's
    ReLU pass. For ``xnor`` with ``input_shape``, ReLUs that feed only binary layers become
    Identity (see the module docstring). Raises ``ValueError`` for an unknown ``pe``, a missing
    ``input_shape``, a network with no conv/linear layer, or a layer the kind's layer class cannot
    take (a dilated convolution), naming it.
    """
    if pe not in PE_LAYERS:
        raise ValueError(f"unknown PE kind {pe!r}; choose one of {', '.join(PE_LAYERS)}")
    layers = [module for module in net.modules() if pe_kind_of(module) is not None]
    if not layers:
        raise ValueError(f"{type(net).__name__} has no conv or linear layer to convert")
    written = as_written and any(pe_kind_of(module) != "mac" for module in layers)
    if keep_first_last and input_shape is None and not written:
        raise ValueError("input_shape is needed to find the first and last layers; "
                         "pass input_shape=(1, C, H, W) or keep_first_last=False")
    xnor_pass = pe == "xnor" and input_shape is not None
    first_last = keep_first_last and not written
    trace = _observe(net, input_shape, readers=xnor_pass) if first_last or xnor_pass else None
    kept: set[int] = {id(m) for m in layers if pe_kind_of(m) == "mac"} if written else set()
    if first_last:
        if not trace.order:
            raise ValueError(f"no conv or linear layer of {type(net).__name__} runs in its forward pass")
        kept = {id(trace.order[0]), id(trace.order[-1])}
    # Replacements are made from the original layers and handed to deepcopy as already copied,
    # so the weights of replaced layers are not copied only to be thrown away, and every name
    # of a shared layer gets its one replacement.
    memo: dict[int, object] = {}
    names = {id(m): n for n, m in net.named_modules()}
    for module in layers:
        target = "mac" if id(module) in kept else pe
        if pe_kind_of(module) != target:
            try:
                memo[id(module)] = make_like(module, target)
            except ValueError as exc:
                raise ValueError(f"layer {names[id(module)] or type(module).__name__!r} "
                                 f"({type(module).__name__}) cannot become {target}: {exc}; keep it "
                                 "mac (convert another network) or build it without that option") from None
    if id(net) in memo:  # ``net`` is itself a single conv/linear layer
        return memo[id(net)]
    result = copy.deepcopy(net, memo)
    if xnor_pass:
        for name in _relus_before_binary(net, trace, kept):
            result.set_submodule(name, nn.Identity())
    return result


class _Trace:
    """What one forward pass over zeros shows: the conv/linear modules in the order they are first
    called, and (when asked) who reads each leaf module's output (see :func:`_observe`)."""

    def __init__(self) -> None:
        self.order: list[nn.Module] = []
        self.readers: dict[int, list[nn.Module | None]] = {}


def _relus_before_binary(net: nn.Module, trace: _Trace, kept: set[int]) -> list[str]:
    """Names of the ReLU modules whose every reader is a conv/linear layer that becomes binary
    (all conv/linear layers do except the ``kept`` ones)."""
    def binary(reader: nn.Module | None) -> bool:
        return reader is not None and pe_kind_of(reader) is not None and id(reader) not in kept

    return [name for name, module in net.named_modules(remove_duplicate=False)
            if isinstance(module, nn.ReLU) and trace.readers.get(id(module))
            and all(binary(r) for r in trace.readers[id(module)])]


def _observe(net: nn.Module, input_shape: tuple[int, ...], *, readers: bool) -> _Trace:
    """One eval-mode pass of ``net`` over zeros that records the conv/linear execution order and,
    with ``readers``, for every leaf module (by id) the leaf modules that take its output as an
    input and ``None`` for each torch function outside the leaves that computes with it.

    Outputs are matched by identity through weak references, so a tensor freed during the pass
    cannot pass its ``id`` on to a later one and fake a reader. Each module's training flag is
    restored afterwards, hooks removed: ``net`` is left as it was.
    """
    result = _Trace()
    seen: set[int] = set()
    outputs: dict[int, tuple[weakref.ref, nn.Module]] = {}

    def read(t: object, reader: nn.Module | None) -> None:
        for item in (t if isinstance(t, (list, tuple)) else (t,)):
            entry = outputs.get(id(item)) if isinstance(item, torch.Tensor) else None
            if entry is not None and entry[0]() is item:
                result.readers.setdefault(id(entry[1]), []).append(reader)

    mode = _FunctionReads(read)

    def first_call(module: nn.Module, inputs: tuple) -> None:
        if id(module) not in seen:
            seen.add(id(module))
            result.order.append(module)

    def pre(module: nn.Module, inputs: tuple) -> None:
        if mode.inside == 0:
            for t in inputs:
                read(t, module)
        mode.inside += 1

    def post(module: nn.Module, inputs: tuple, output: object) -> None:
        mode.inside -= 1
        if mode.inside == 0 and isinstance(output, torch.Tensor):
            outputs[id(output)] = (weakref.ref(output), module)

    handles = [m.register_forward_pre_hook(first_call) for m in net.modules() if pe_kind_of(m) is not None]
    if readers:
        leaves = [m for m in net.modules() if not list(m.children())]
        handles += [h for m in leaves for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    modes = [(m, m.training) for m in net.modules()]
    for module, _ in modes:
        module.training = False
    try:
        with torch.no_grad(), (mode if readers else contextlib.nullcontext()):
            net(torch.zeros(input_shape, device=next(net.parameters()).device))
    finally:
        for module, training in modes:
            module.training = training
        for handle in handles:
            handle.remove()
    return result


class _FunctionReads(TorchFunctionMode):
    """Reports the tensor arguments of torch functions called outside leaf modules (``inside``
    counts the leaves being run) that return tensors; size and shape queries read no values."""

    def __init__(self, read: Callable[[object, None], None]) -> None:
        super().__init__()
        self.read = read
        self.inside = 0

    def __torch_function__(self, func: Callable, types: tuple, args: tuple = (), kwargs: dict | None = None):
        out = func(*args, **(kwargs or {}))
        if self.inside == 0 and isinstance(out, (torch.Tensor, list, tuple)):
            for arg in (*args, *(kwargs or {}).values()):
                self.read(arg, None)
        return out

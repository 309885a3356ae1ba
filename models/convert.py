"""Convert a network to another processing-element (PE) kind, layer by layer.

The AdderNet (Chen et al., CVPR 2020), BNN/XNOR-Net/Bi-Real and DeepShift (Elhoushi et al.,
2021) papers all keep the first convolution (the one that sees the image) and the final
classifier at full precision, because those two layers are small in cost but large in accuracy
impact; :func:`convert` follows that policy by default.

For ``xnor`` a ReLU whose output goes only to binary layers is replaced by ``nn.Identity``, as
binary networks do: the binary layer's own sign is the activation, and ``sign(relu(y))`` would
be +1 everywhere (a constant input).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from models.layers import PE_LAYERS, make_like, pe_kind_of


def convert(net: nn.Module, pe: str, *, input_shape: tuple[int, ...] | None = None,
            keep_first_last: bool = True) -> nn.Module:
    """Return a deep copy of ``net`` with every conv/linear layer of any PE kind made ``pe``.

    With ``keep_first_last`` the first and the last conv/linear layer *in forward execution
    order* become (or stay) plain ``mac`` layers. Registration order is not a reliable stand-in
    (a user network may define its classifier first), so the order is observed with forward
    pre-hooks on one pass over zeros of ``input_shape`` (batch first, e.g. ``(1, 3, 224, 224)``),
    which is then required. ``net`` itself is not modified.

    For ``xnor`` with ``input_shape``, ReLUs that feed only binary layers become Identity (see the
    module docstring). Raises ``ValueError`` for an unknown ``pe``, a missing ``input_shape``, or
    a network with no conv/linear layer.
    """
    if pe not in PE_LAYERS:
        raise ValueError(f"unknown PE kind {pe!r}; choose one of {', '.join(PE_LAYERS)}")
    result = copy.deepcopy(net)
    layers = [module for module in result.modules() if pe_kind_of(module) is not None]
    if not layers:
        raise ValueError(f"{type(net).__name__} has no conv or linear layer to convert")
    kept: set[int] = set()
    if keep_first_last:
        if input_shape is None:
            raise ValueError("input_shape is needed to find the first and last layers; "
                             "pass input_shape=(1, C, H, W) or keep_first_last=False")
        order = _execution_order(result, input_shape)
        if not order:
            raise ValueError(f"no conv or linear layer of {type(net).__name__} runs in its forward pass")
        kept = {id(order[0]), id(order[-1])}
    replacements: dict[int, nn.Module] = {}
    for module in layers:
        target = "mac" if id(module) in kept else pe
        replacements[id(module)] = module if pe_kind_of(module) == target else make_like(module, target)
    for name, module in list(result.named_modules(remove_duplicate=False)):
        if id(module) in replacements:  # every name of a shared layer gets the one replacement
            if not name:  # ``net`` is itself a single conv/linear layer
                return replacements[id(module)]
            result.set_submodule(name, replacements[id(module)])
    if pe == "xnor" and input_shape is not None:
        _drop_relus_before_binary(result, input_shape)
    return result


def _drop_relus_before_binary(net: nn.Module, input_shape: tuple[int, ...]) -> None:
    """Replace, in place, every ReLU module whose output feeds only binary layers by Identity."""
    consumers = _consumers(net, input_shape)
    for name, module in list(net.named_modules()):
        users = consumers.get(id(module), [])
        if isinstance(module, nn.ReLU) and users and all(pe_kind_of(u) == "xnor" for u in users):
            net.set_submodule(name, nn.Identity())


def _consumers(net: nn.Module, input_shape: tuple[int, ...]) -> dict[int, list[nn.Module]]:
    """For every leaf module, the leaf modules that take its output as their input (one pass)."""
    producer: dict[int, nn.Module] = {}
    consumers: dict[int, list[nn.Module]] = {}

    def pre(module: nn.Module, inputs: tuple) -> None:
        for t in inputs:
            if isinstance(t, torch.Tensor) and id(t) in producer:
                consumers.setdefault(id(producer[id(t)]), []).append(module)

    def post(module: nn.Module, inputs: tuple, output: object) -> None:
        if isinstance(output, torch.Tensor):
            producer[id(output)] = module

    leaves = [m for m in net.modules() if not list(m.children())]
    handles = [h for m in leaves for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    _run_zeros(net, input_shape, handles)
    return consumers


def _run_zeros(net: nn.Module, input_shape: tuple[int, ...], handles: list) -> None:
    """One eval-mode forward pass on zeros, then remove ``handles`` and restore the mode."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(torch.zeros(input_shape, device=next(net.parameters()).device))
    finally:
        net.train(was_training)
        for handle in handles:
            handle.remove()


def _execution_order(net: nn.Module, input_shape: tuple[int, ...]) -> list[nn.Module]:
    """Conv/linear layers in the order the forward pass first calls them."""
    order: list[nn.Module] = []
    seen: set[int] = set()

    def record(module: nn.Module, inputs: tuple) -> None:
        if id(module) not in seen:
            seen.add(id(module))
            order.append(module)

    handles = [m.register_forward_pre_hook(record) for m in net.modules() if pe_kind_of(m) is not None]
    _run_zeros(net, input_shape, handles)
    return order

"""Convert a network to another processing-element (PE) kind, layer by layer.

The AdderNet (Chen et al., CVPR 2020), BNN/XNOR-Net/Bi-Real and DeepShift (Elhoushi et al.,
2021) papers all keep the first convolution (the one that sees the image) and the final
classifier at full precision, because those two layers are small in cost but large in accuracy
impact; :func:`convert` follows that policy by default.
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

    Raises ``ValueError`` for an unknown ``pe``, a missing ``input_shape``, or a network with no
    conv/linear layer.
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
    return result


def _execution_order(net: nn.Module, input_shape: tuple[int, ...]) -> list[nn.Module]:
    """Conv/linear layers in the order the forward pass first calls them."""
    order: list[nn.Module] = []
    seen: set[int] = set()

    def record(module: nn.Module, inputs: tuple) -> None:
        if id(module) not in seen:
            seen.add(id(module))
            order.append(module)

    handles = [m.register_forward_pre_hook(record) for m in net.modules() if pe_kind_of(m) is not None]
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(torch.zeros(input_shape, device=next(net.parameters()).device))
    finally:
        net.train(was_training)
        for handle in handles:
            handle.remove()
    return order

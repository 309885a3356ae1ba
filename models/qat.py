"""A short quantization-aware fine-tune: train a few epochs through the integer grids it will get.

Post-training quantization (:func:`models.intnet.build`) rounds a network that never saw its
grids; at 3-4 bits the ReLU outputs get 4-8 levels and the network loses points. The fine-tune
here lets it adapt: every conv/linear sees its input fake-quantized -- rounded to the signed
``bits``-bit grid (or the unsigned one of a ReLU wire under ``Scheme.unsigned``) of the range the
scheme's calibration picks on ``calib`` (fixed for the run), with the straight-through gradient (:func:`models.layers.round_ste`) -- and the weights that the
integer form rounds are rounded the same way in the forward pass:

* mac: per output channel on ``max|W_o| / qmax`` (as :func:`models.quant.quantize_mac`);
* adder, shared scale: on ``max(in_range, max|W|) / qmax``; grouped: on the input grid (the
  lossless weight clamp needs no fake clamp; group alignments, which only refine the grid of
  small kernels, are left to the post-training step);
* shift weights are exact powers of two already and xnor layers binary: both train as they are.

Then :func:`models.train.train` runs as usual (augmentation, SGD, cosine schedule) with
``epochs`` and a learning rate of :data:`LR_FACTOR` times the PE kind's default (adder layers'
own adaptive step ``eta`` scaled alike). Afterwards the hooks are removed and the float network
is quantized as before.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

from models.calibrate import calibrate
from models.data import Split
from models.intnet import Scheme
from models.layers import pe_kind_of, round_ste
from models.train import _LR, TrainConfig, train

__all__ = ["LR_FACTOR", "finetune"]

#: The fine-tune's learning rate relative to the PE kind's training rate.
LR_FACTOR = 0.1


def _fake(x: torch.Tensor, scale: torch.Tensor | float, bits: int) -> torch.Tensor:
    """``x`` on the signed ``bits``-bit grid of step ``scale``, straight-through gradient."""
    top = (1 << (bits - 1)) - 1
    return torch.clamp(round_ste(x / scale), -top - 1, top) * scale


def _input_grids(net: nn.Module, calib: torch.Tensor, bits: int,
                 scheme: Scheme) -> dict[nn.Module, tuple[float, int]]:
    """``(step, width)`` of every conv/linear input's grid, calibrated on ``calib`` (eval mode):
    ``bits`` signed, or -- with ``scheme.unsigned``, for a non-negative input after the first
    layer, as :func:`models.intnet.build` makes ReLU wires -- the unsigned ``bits``-bit grid,
    which is the positive half of the signed ``bits + 1``-bit one."""
    seen: dict[nn.Module, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda m, a: seen.setdefault(m, a[0].detach()))
             for m in net.modules() if pe_kind_of(m) is not None]
    net.eval()
    try:
        with torch.no_grad():
            net(calib)
    finally:
        for h in hooks:
            h.remove()
    grids = {}
    for i, (m, x) in enumerate(seen.items()):
        kind = pe_kind_of(m)
        width = bits + int(scheme.unsigned and i > 0 and float(x.min()) >= 0 and kind != "xnor"
                           and (kind != "adder" or bool(scheme.adder_groups)))
        top = calibrate(x, width, scheme.method, percentile=scheme.percentile,
                        pow2=scheme.pow2_shift and kind == "shift")
        grids[m] = (top / ((1 << (width - 1)) - 1), width)
    return grids


def _weight_step(module: nn.Module, step: float, bits: int, scheme: Scheme) -> Callable | None:
    """How the forward rounds ``module``'s weight, or None for exact (shift) or binary weights."""
    qmax = (1 << (bits - 1)) - 1
    kind = pe_kind_of(module)
    if kind == "mac":
        def per_channel(w: torch.Tensor) -> torch.Tensor:
            peak = w.detach().abs().reshape(w.shape[0], -1).amax(dim=1).clamp_min(1e-12)
            return _fake(w, (peak / qmax).reshape(-1, *[1] * (w.ndim - 1)), bits)
        return per_channel
    if kind == "adder":  # the input's grid (grouped), or one covering the weights too (shared)
        def shared(w: torch.Tensor) -> torch.Tensor:
            s = step if scheme.adder_groups else max(step, float(w.detach().abs().max()) / qmax)
            return w + (torch.round(w / s) * s - w).detach()
        return shared
    return None


def finetune(net: nn.Module, pe: str, data: Split, calib: torch.Tensor, *, bits: int,
             scheme: Scheme, epochs: int, seed: int = 0) -> nn.Module:
    """A copy of the trained ``net`` (a ``pe`` variant) fine-tuned ``epochs`` epochs through the
    ``bits``-bit grids of ``scheme`` (see the module doc), in eval mode."""
    net = copy.deepcopy(net)
    grids = _input_grids(net, calib, bits, scheme)
    handles = []
    etas = {m: m.eta for m in grids if hasattr(m, "eta")}
    for m, eta in etas.items():
        m.eta = LR_FACTOR * eta
    for module, (step, width) in grids.items():
        rounding = _weight_step(module, step, bits, scheme)
        handles.append(module.register_forward_pre_hook(
            lambda m, a, s=step, b=width: (_fake(a[0], s, b),)))
        if rounding is not None:
            parametrize.register_parametrization(module, "weight", _Step(rounding))
    try:
        train(net, pe, data, TrainConfig(epochs=epochs, seed=seed, lr=LR_FACTOR * _LR[pe]))
    finally:
        for h in handles:
            h.remove()
        for m, eta in etas.items():
            m.eta = eta
        for module in grids:
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight",
                                                                   leave_parametrized=False)
    return net.eval()


class _Step(nn.Module):
    """A weight parametrization applying one rounding function."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.fn(w)

"""Multiplication-free layers written by others: registration, weight checks and quantizer widths.

:func:`hwsim.extract.extract` recognises most third-party layers by what they compute (an L1
distance between patches and weights is an adder layer, a conv on sign-valued inputs and weights
is binary, weights made as ``2**round(...)`` are shift); this module holds what it needs for that:

* :func:`register_layer`: the explicit way, for a class whose forward the tracer cannot classify
  (e.g. a CUDA kernel). A registered module is costed as one conv/linear layer of its kind. A
  package can register its layers for every user through an entry point in the group
  ``hwsim.layers`` naming a function that calls :func:`register_layer`; those functions run
  (:func:`load_entry_points`) the first time a network has parameters no layer accounts for.
* :func:`weight_kind`: whether a weight tensor that reached a GEMM is binary (one magnitude per
  output channel) or a signed power of two, by its values -- weights are real numbers in the
  shape-only pass, activations are not.
* :func:`quant_widths`: bit widths of Brevitas-style quantized layers, read duck-typed (no
  brevitas import): ``quant_weight_bit_width()``, ``weight_quant.bit_width()``,
  ``quant_weight().bit_width``, ``weight_bit_width``; input/output widths likewise.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

import torch
from torch import nn

from contract import PE_KINDS
from hwsim.errors import HwsimError

__all__ = ["Registration", "load_entry_points", "quant_widths", "register_layer", "registration_of",
           "unregister_layer", "weight_kind"]


@dataclass(frozen=True)
class Registration:
    """How to cost instances of a registered class: the PE kind, and the attribute names that hold
    the weight and the conv hyper-parameters (missing ones are inferred from the shapes)."""

    kind: str
    weight: str = "weight"
    stride: str = "stride"
    padding: str = "padding"
    groups: str = "groups"


_REGISTRY: dict[type, Registration] = {}


def register_layer(cls: type, kind: str, *, weight: str = "weight", stride: str = "stride",
                   padding: str = "padding", groups: str = "groups") -> None:
    """Cost every instance of ``cls`` (and of its subclasses) as one conv/linear layer on ``kind``.

    ``weight`` names the attribute holding the weight tensor: 4-D ``(out, in/groups, kh, kw)``
    makes a 2-D convolution, 2-D ``(out, in)`` a linear layer. ``stride``/``padding``/``groups``
    name the attributes with those hyper-parameters; when an instance lacks one it is inferred
    from the input and output shapes. The module's own forward still runs (for its output
    shape) but nothing inside it is costed. Registering a class again replaces its entry.
    """
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise HwsimError(f"register_layer needs an nn.Module subclass, not {cls!r}")
    if kind not in PE_KINDS:
        raise HwsimError(f"register_layer({cls.__name__}): unknown PE kind {kind!r}; "
                         f"choose one of {', '.join(PE_KINDS)}")
    _REGISTRY[cls] = Registration(kind, weight, stride, padding, groups)


_LOADED: list[bool] = []


def load_entry_points() -> bool:
    """Run, once per process, every ``hwsim.layers`` entry point (a function that registers
    layers); True if that registered anything new. Reading the installed packages' metadata takes
    tens of milliseconds, so extraction asks only when a network leaves parameters unaccounted."""
    if _LOADED:
        return False
    _LOADED.append(True)
    before = dict(_REGISTRY)
    for point in entry_points(group="hwsim.layers"):
        try:
            point.load()()
        except Exception as exc:  # a third-party package's hook: say which, in one line
            raise HwsimError(f"entry point {point.name!r} ({point.value}) of group hwsim.layers failed: "
                             f"{type(exc).__name__}: {exc}") from None
    return _REGISTRY != before


def unregister_layer(cls: type) -> None:
    """Forget the registration of ``cls`` (recognition by what it computes applies again)."""
    _REGISTRY.pop(cls, None)


def registration_of(module: nn.Module) -> Registration | None:
    """The registration of ``module``'s class or of its nearest registered base class."""
    if not _REGISTRY:
        return None
    for cls in type(module).__mro__:
        if cls in _REGISTRY:
            return _REGISTRY[cls]
    return None


def weight_kind(w: torch.Tensor) -> frozenset[str]:
    """The datapaths ``w``'s values allow: ``"xnor"`` if every output channel (dim 0) has one
    nonzero magnitude (a sign times a per-channel scale, to float round-off), ``"shift"`` if every
    nonzero weight is exactly a signed power of two. Needs two weights per channel to mean
    anything."""
    if w.dim() < 2 or w[0].numel() < 2 or not torch.is_floating_point(w):
        return frozenset()
    mag = w.detach().abs().reshape(w.shape[0], -1).float()
    top = mag.amax(dim=1, keepdim=True)
    kinds = set()
    if bool((top > 0).all()) and bool(((mag - top).abs() <= 1e-3 * top).all()):
        kinds.add("xnor")
    nonzero = mag[mag > 0]
    if nonzero.numel() and bool((torch.frexp(nonzero).mantissa.abs() == 0.5).all()):
        kinds.add("shift")
    return frozenset(kinds)


def _width(module: nn.Module, getters: tuple[Callable[[nn.Module], object], ...]) -> int | None:
    """The first integer width one of ``getters`` reads from ``module`` (None if none does)."""
    for get in getters:
        try:
            value = get(module)
        except Exception:  # duck typing: a missing or disabled quantizer reads as no width
            continue
        if callable(value):
            try:
                value = value()
            except Exception:
                continue
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            if float(value).is_integer():
                return int(value)
    return None


_WEIGHT_WIDTH = (lambda m: m.quant_weight_bit_width, lambda m: m.weight_quant.bit_width,
                 lambda m: m.quant_weight().bit_width, lambda m: m.weight_bit_width)
_INPUT_WIDTH = (lambda m: m.quant_input_bit_width, lambda m: m.input_quant.bit_width,
                lambda m: m.input_bit_width)
_OUTPUT_WIDTH = (lambda m: m.quant_act_bit_width, lambda m: m.act_quant.bit_width,
                 lambda m: m.quant_output_bit_width, lambda m: m.act_bit_width)


def quant_widths(module: nn.Module) -> tuple[int | None, int | None, int | None]:
    """``(input, weight, output)`` bit widths a Brevitas-style quantized module declares (None
    where it declares none). Only attributes defined by the class are read, so a plain module
    costs one ``getattr`` miss per name."""
    if not _declares(type(module)) and not any(n in module._modules for n in _PROXIES):
        return None, None, None
    return _width(module, _INPUT_WIDTH), _width(module, _WEIGHT_WIDTH), _width(module, _OUTPUT_WIDTH)


_NAMES = ("quant_weight_bit_width", "quant_weight", "weight_bit_width", "quant_input_bit_width",
          "input_bit_width", "quant_act_bit_width", "quant_output_bit_width", "act_bit_width")
_PROXIES = ("weight_quant", "input_quant", "act_quant")


@functools.cache
def _declares(cls: type) -> bool:
    """Whether ``cls`` defines one of the width accessors (memoised: extraction asks per module)."""
    return any(hasattr(cls, n) for n in _NAMES)


def infer_stride_padding(size: int, out: int, kernel: int) -> tuple[int, int]:
    """A (stride, padding) pair that maps ``size`` to ``out`` with ``kernel``, for a registered
    layer that does not say: the smallest stride, then the smallest padding."""
    for stride in range(1, max(1, size) + 1):
        for padding in range(0, kernel + 1):
            if (size + 2 * padding - kernel) // stride + 1 == out and size + 2 * padding >= kernel:
                return stride, padding
    raise HwsimError(f"cannot find a stride and padding that map {size} to {out} with kernel {kernel}")


def pair(value: object, default: int) -> tuple[int, int]:
    """``value`` as an int pair (an int, a 1- or 2-sequence); ``default`` twice if it is None."""
    if value is None:
        return default, default
    if isinstance(value, int):
        return value, value
    seq = [int(v) for v in value]  # type: ignore[union-attr]
    return (seq[0], seq[0]) if len(seq) == 1 else (seq[0], seq[1])

"""Calibration: the real range a symmetric signed ``bits``-bit integer grid covers.

A tensor ``v`` is quantized as ``clip(round(v / s), -2**(b-1), 2**(b-1) - 1) * s`` with the scale
``s = range / (2**(b-1) - 1)``. The range is picked from a calibration sample by one of:

* ``max``: ``max |v|`` -- nothing clips, but one outlier coarsens the whole grid;
* ``percentile``: the ``percentile``-th percentile of ``|v|`` -- the outliers clamp of AdderNet
  redistribution quantization (Nie et al., NeurIPS 2022): the few values above it saturate;
* ``mse``: the range in ``(0, max |v|]`` whose quantized tensor is nearest ``v`` in mean squared
  error, searched over :data:`MSE_STEPS` evenly spaced candidates.

With ``pow2`` the scale ``s`` is a power of two (the shift datapath's activation scale, so that
the product of activation and weight scales stays a power of two): of the two powers of two that
bracket the chosen scale, the one with the smaller squared error.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["CALIBRATIONS", "MSE_STEPS", "SAMPLE", "calibrate", "check_method", "quant_error"]

#: The calibration methods, in the order the command line lists them.
CALIBRATIONS = ("max", "percentile", "mse")
#: Candidate ranges of the ``mse`` search.
MSE_STEPS = 64
#: Values a calibration looks at, at most (an evenly strided subsample of larger tensors).
SAMPLE = 1 << 18


def check_method(method: object, percentile: object = 99.99) -> str:
    """Return ``method`` if it is a calibration method with a valid ``percentile``, else raise."""
    if method not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {', '.join(CALIBRATIONS)}, not {method!r}")
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) \
            or not 50 <= percentile <= 100:
        raise ValueError(f"percentile must be a number from 50 to 100, not {percentile!r}")
    return method  # type: ignore[return-value]


def _sample(values: torch.Tensor | np.ndarray) -> np.ndarray:
    v = values.detach().cpu().double().numpy() if isinstance(values, torch.Tensor) else \
        np.asarray(values, dtype=float)
    v = np.abs(v.ravel())
    return v[::-(-v.size // SAMPLE)] if v.size > SAMPLE else v


def quant_error(v: np.ndarray, scale: float, bits: int) -> float:
    """Mean squared error of ``v`` on the signed ``bits``-bit grid of step ``scale``."""
    q = np.clip(np.round(v / scale), -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return float(np.mean((q * scale - v) ** 2))


def calibrate(values: torch.Tensor | np.ndarray, bits: int, method: str = "max", *,
              percentile: float = 99.99, pow2: bool = False) -> float:
    """The range of ``values`` for a ``bits``-bit grid by ``method`` (see the module doc). A
    tensor that is all zero (a wire no calibration image reaches) gets range 1, so that its
    producer's requantization factor stays representable; a zero percentile falls back to max."""
    check_method(method, percentile)
    v = _sample(values)
    top = float(v.max()) if v.size else 0.0
    if top == 0:
        return 1.0
    qmax = (1 << (bits - 1)) - 1
    if method == "max":
        chosen = top
    elif method == "percentile":
        chosen = float(np.percentile(v, percentile)) or top
    else:
        candidates = top * np.arange(1, MSE_STEPS + 1) / MSE_STEPS
        chosen = float(min(candidates, key=lambda r: quant_error(v, r / qmax, bits)))
    if not pow2:
        return chosen
    low = 2.0 ** math.floor(math.log2(chosen / qmax))
    return qmax * min((low, 2 * low), key=lambda s: quant_error(v, s, bits))

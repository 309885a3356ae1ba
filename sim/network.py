"""Co-simulate a small trained network through the RTL, layer by layer, on real test images.

:func:`run_network` trains (or takes from the training cache) the network's variant for the
accelerator's PE kind, builds its integer form (:mod:`models.intnet`) and runs it two ways on the
same images: the integer reference stage by stage, and a hardware path in which every layer of
the accelerator's PE kind runs on the generated top under Verilator (all images of one layer in
one simulation, layer after layer on the same build) while the stages the top cannot run
(the full-precision first and last layers, pooling, flatten, sign) are computed by the reference.
Each RTL layer is checked bit for bit against the reference on the RTL path's own input, the
predictions of both paths are compared image by image, and the measured cycles are compared with
``hwsim estimate --timing rtl`` of the same network on the same accelerator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from contract import layer_bits
from hwsim.accelerator import Accelerator
from hwsim.errors import HwsimError
from hwsim.extract import extract
from hwsim.files import build_root
from hwsim.simulate import estimate
from models import intnet
from models.data import load_digits
from models.networks.digits import digits_cnn
from models.quant import quantize_input
from models.train import TrainConfig, train_cached
from sim.build import build_top
from sim.cosim import check_fits, run_layers

__all__ = ["CALIB_IMAGES", "NETWORKS", "LayerCheck", "NetworkCosim", "run_network"]

#: Networks that can be co-simulated: name -> (factory, description).
NETWORKS = {"digits": (digits_cnn, "the digits CNN on scikit-learn's 8x8 digits")}

#: Training images that calibrate the integer network's ranges (as the energy-accuracy report).
CALIB_IMAGES = 512


@dataclass(frozen=True)
class LayerCheck:
    """One layer run on the RTL for every image: mismatching output values (all images),
    measured, stall and predicted cycles summed over the images."""

    name: str
    shape: str
    mismatches: int
    measured: int
    stalls: int
    predicted: int


@dataclass(frozen=True)
class NetworkCosim:
    """The outcome of :func:`run_network`; ``reference_stages`` are computed by the reference."""

    network: str
    acc: Accelerator
    labels: np.ndarray
    rtl_predictions: np.ndarray
    reference_predictions: np.ndarray
    layers: tuple[LayerCheck, ...]
    reference_stages: tuple[str, ...]
    simulated_cycles: int
    sim_seconds: float
    build_seconds: float
    build_reused: bool

    @property
    def images(self) -> int:
        return len(self.labels)

    @property
    def measured(self) -> int:
        return sum(layer.measured for layer in self.layers)

    @property
    def predicted(self) -> int:
        return sum(layer.predicted for layer in self.layers)

    @property
    def stalls(self) -> int:
        return sum(layer.stalls for layer in self.layers)

    @property
    def passed(self) -> bool:
        """Bit-exact layers, equal predictions, and cycles as predicted (stalls aside)."""
        return (all(layer.mismatches == 0 for layer in self.layers)
                and bool((self.rtl_predictions == self.reference_predictions).all())
                and self.measured - self.stalls == self.predicted)


def _shape(x: np.ndarray, y: np.ndarray) -> str:
    return f"{'x'.join(map(str, x.shape[1:]))}->{'x'.join(map(str, y.shape[1:]))}"


def run_network(name: str, acc: Accelerator, *, images: int = 20, seed: int = 0,
                epochs: int = TrainConfig.epochs, cache_dir: Path | None = None,
                valid_pattern: tuple[int, ...] = (1,), ready_pattern: tuple[int, ...] = (1,),
                status: Callable[[str], None] = lambda text: None) -> NetworkCosim:
    """Co-simulate network ``name`` on ``acc`` over the first ``images`` test images.

    ``epochs``/``seed``/``cache_dir`` are the training's (the trained weights are cached, by
    default under ``cache/`` of :func:`hwsim.files.build_root`);
    ``status`` receives progress lines. Raises :class:`HwsimError` for an unknown network, an
    image count out of range, a network without layers of ``acc.pe``, or a layer that does not
    fit the accelerator (before anything is built).
    """
    if name not in NETWORKS:
        raise HwsimError(f"unknown network {name!r} for cosim; choose one of {', '.join(NETWORKS)}")
    split = load_digits()
    if not 1 <= images <= len(split.y_test):
        raise HwsimError(f"--images must be from 1 to {len(split.y_test)} (the test split), not {images}")
    cache_dir = build_root() / "cache" if cache_dir is None else cache_dir
    torch.manual_seed(seed)
    base = NETWORKS[name][0](num_classes=len(split.classes))
    status(f"training the {acc.pe} variant of {name} ({epochs} epochs, cached in {cache_dir})")
    net, _ = train_cached(base, acc.pe, split, TrainConfig(epochs=epochs, seed=seed), cache_dir)
    bits = layer_bits(acc.pe, acc.bits)
    int_net = intnet.build(net, split.x_train[:CALIB_IMAGES], bits=bits)
    report = estimate(extract(net, split.input_shape, bits=bits, name=name), acc, timing="rtl")
    predicted = {row.name: row.cycles for row in report.layers if row.on_main_array}

    x = quantize_input(int_net.layers[0], split.x_test[:images])
    on_rtl = {id(s) for s in int_net.stages if s.op == "layer" and s.q.pe == acc.pe}
    if not on_rtl:
        raise HwsimError(f"{name} converted to {acc.pe} has no {acc.pe} layer to run on the RTL")
    y = x
    for stage in int_net.stages:  # shapes only: every RTL layer must fit before the build
        if id(stage) in on_rtl:
            check_fits(acc, stage.q, y[:1])
        y = intnet.run_stage(stage, y)

    build = build_top(acc)
    status(f"{'reused' if build.reused else 'built'} {build.dir} in {build.build_seconds:.1f} s")
    checks, reference_only, cycles, seconds = [], [], 0, 0.0
    y = x
    for stage in int_net.stages:
        if id(stage) not in on_rtl:
            reference_only.append(stage.name)
            y = intnet.run_stage(stage, y)
            continue
        status(f"{stage.name}: {images} images through the {acc.pe} RTL")
        run = run_layers(build, [(stage.q, y[i:i + 1]) for i in range(images)],
                         valid_pattern=valid_pattern, ready_pattern=ready_pattern)
        out = np.concatenate([layer.output for layer in run.layers])
        checks.append(LayerCheck(stage.name, _shape(y, out),
                                 sum(layer.mismatch_count for layer in run.layers),
                                 sum(layer.cycles for layer in run.layers),
                                 sum(layer.stalls for layer in run.layers),
                                 predicted[stage.name] * images))
        cycles += run.cycles
        seconds += run.sim_seconds
        y = out
    reference = int_net.forward(split.x_test[:images])
    return NetworkCosim(name, acc, split.y_test[:images].numpy(), y.argmax(axis=1),
                        reference.argmax(axis=1), tuple(checks), tuple(reference_only), cycles,
                        seconds, build.build_seconds, build.reused)

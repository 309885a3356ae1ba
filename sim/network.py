"""Co-simulate a small trained network on the network accelerator, on real test images.

:func:`run_network` trains (or takes from the training cache) the network's variant for the
accelerator's PE kind, builds its integer form (:mod:`models.intnet`) and runs it two ways on the
same images: the integer reference stage by stage, and a hardware path in which the layers of
the accelerator's PE kind run on the generated :class:`~rtl.sequencer.NetworkAccelerator` under
Verilator: one command list for all images and all those layers, started once, every layer
reading its input from where the previous one's tiles stored it (:mod:`sim.netcosim`); the stages
around them that the array does not run (the full-precision first and last layers, pooling,
flatten, sign) are computed by the reference on the host, before and after. Every intermediate
activation region is checked byte for byte and the last layer value for value against the
reference, and the predictions of both paths are compared image by image. Cycles: the run's
measured cycles (start to done, at the memory latency given) against
:func:`hwsim.rtl_sequence.sequence_cycles` of the command list (equal for an always available
memory), and next to ``hwsim estimate --timing rtl`` of the same layers, which times the layer
top alone, streamed by a host at full rate (the difference: command fetches, DMA transfers,
memory latency).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from contract import layer_bits
from hwsim.accelerator import Accelerator
from hwsim.errors import DoesNotFit, HwsimError
from hwsim.extract import extract
from hwsim.files import build_root
from hwsim.simulate import estimate
from models import intnet
from models.data import load_digits
from models.networks.digits import digits_cnn
from models.quant import quantize_input
from models.train import TrainConfig, train_cached
from hwsim.rtl_plan import top_geometry
from rtl.netprog import chain_program
from rtl.top import LayerAccelerator
from sim.build import build_top
from sim.cosim import check_fits
from sim.netcosim import run_chain

__all__ = ["CALIB_IMAGES", "NETWORKS", "LayerCheck", "NetworkCosim", "run_network"]

#: Networks that can be co-simulated: name -> (factory, description).
NETWORKS = {"digits": (digits_cnn, "the digits CNN on scikit-learn's 8x8 digits")}

#: Training images that calibrate the integer network's ranges (as the energy-accuracy report).
CALIB_IMAGES = 512


@dataclass(frozen=True)
class LayerCheck:
    """One layer run on the RTL for every image: mismatching output bytes (intermediate layers:
    the stored activation region) or values (the last layer), all images; the layer top's
    predicted cycles summed over the images."""

    name: str
    shape: str
    mismatches: int
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
    error: bool = False
    read_latency: int = 1
    sequence_predicted: int = 0
    memory_always_ready: bool = True

    @property
    def images(self) -> int:
        return len(self.labels)

    @property
    def predicted(self) -> int:
        return sum(layer.predicted for layer in self.layers)

    @property
    def cycles_as_predicted(self) -> bool:
        """The run's cycles equal :func:`hwsim.rtl_sequence.sequence_cycles` (an always available
        memory), or exceed them when the memory was busy at times."""
        if self.memory_always_ready:
            return self.simulated_cycles == self.sequence_predicted
        return self.simulated_cycles > self.sequence_predicted

    @property
    def passed(self) -> bool:
        """Bit-exact layers, equal predictions, no error flag, cycles as predicted."""
        return (all(layer.mismatches == 0 for layer in self.layers) and not self.error
                and bool((self.rtl_predictions == self.reference_predictions).all())
                and self.cycles_as_predicted)


def _shape(x: np.ndarray, y: np.ndarray) -> str:
    return f"{'x'.join(map(str, x.shape[1:]))}->{'x'.join(map(str, y.shape[1:]))}"


def run_network(name: str, acc: Accelerator, *, images: int = 20, seed: int = 0,
                epochs: int = TrainConfig.epochs, cache_dir: Path | None = None,
                read_latency: int = 1, pattern: tuple[int, ...] = (1,),
                status: Callable[[str], None] = lambda text: None) -> NetworkCosim:
    """Co-simulate network ``name`` on ``acc`` over the first ``images`` test images.

    ``epochs``/``seed``/``cache_dir`` are the training's (the trained weights are cached, by
    default under ``cache/`` of :func:`hwsim.files.build_root`); ``read_latency`` (cycles, also
    the write acknowledge's) and ``pattern`` (memory availability per cycle) are the AXI memory
    model's; ``status`` receives progress lines. Raises :class:`HwsimError` for an unknown
    network, an image count out of range, a network without layers of ``acc.pe``, layers of it
    that are not consecutive, or a layer that does not fit or cannot be chained (before anything
    is built).
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
    stages = list(int_net.stages)
    on_rtl = [i for i, s in enumerate(stages) if s.op == "layer" and s.q.pe == acc.pe]
    if not on_rtl:
        raise HwsimError(f"{name} converted to {acc.pe} has no {acc.pe} layer to run on the RTL")
    first, last = on_rtl[0], on_rtl[-1]
    if on_rtl != list(range(first, last + 1)):
        between = [stages[i].name for i in range(first, last + 1) if i not in on_rtl]
        raise HwsimError(f"{name}'s {acc.pe} layers are not consecutive ({', '.join(between)} in "
                         f"between): the sequencer runs one chain of array layers")
    y = x
    for stage in stages[:first]:  # the host's stages before the chain
        y = intnet.run_stage(stage, y)
    chain = [stages[i].q for i in on_rtl]
    ins, z = [], y[:1]
    for i in on_rtl:  # shapes only: every layer must fit and chain before the build
        check_fits(acc, stages[i].q, z)
        ins.append(z)
        z = intnet.run_stage(stages[i], z)
    ins.append(z)
    try:
        chain_program(LayerAccelerator(top_geometry(acc)), chain, [y[:1]])
    except DoesNotFit as exc:
        raise DoesNotFit(f"{name} cannot run on the sequencer: {exc}") from None

    build = build_top(acc, network=True)
    status(f"{'reused' if build.reused else 'built'} {build.dir} in {build.build_seconds:.1f} s")
    status(f"{', '.join(stages[i].name for i in on_rtl)}: {images} images in one command list")
    run = run_chain(build, chain, [y[i:i + 1] for i in range(images)], read_latency=read_latency,
                    write_latency=read_latency, pattern=pattern)
    checks = []
    for index, (q, i) in enumerate(zip(chain, on_rtl)):
        checks.append(LayerCheck(stages[i].name, _shape(ins[index], ins[index + 1]), run.mismatches[index],
                                 predicted[stages[i].name] * images))
    y = np.concatenate(run.outputs)
    for stage in stages[last + 1:]:  # the host's stages after the chain
        y = intnet.run_stage(stage, y)
    reference = int_net.forward(split.x_test[:images])
    reference_only = tuple(s.name for i, s in enumerate(stages) if i not in on_rtl)
    return NetworkCosim(name, acc, split.y_test[:images].numpy(), y.argmax(axis=1),
                        reference.argmax(axis=1), tuple(checks), reference_only, run.cycles,
                        run.sim_seconds, build.build_seconds, build.reused, run.error, read_latency,
                        run.predicted, all(pattern))

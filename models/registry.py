"""Named networks with their input shapes and published cost figures, and a loader that also
accepts users' own networks.

``load_model`` understands three kinds of spec:

* a registry name, e.g. ``resnet18`` (see :data:`MODELS`);
* ``path/to/file.py:factory`` — a Python file (imported with its folder on ``sys.path``, so it
  may import its neighbours);
* ``package.module:factory`` — an importable module.

A factory is called with no arguments and returns an ``nn.Module`` or a ``(module,
input_shape)`` tuple. Input shapes are batch first, e.g. ``(1, 3, 224, 224)``, as
:func:`hwsim.extract.extract` takes them.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType

from torch import nn

from models.layers import pe_kind_of
from models.networks.addernet import addernet_resnet20, addernet_resnet50
from models.networks.birealnet import birealnet18
from models.networks.digits import digits_cnn
from models.networks.edsr import edsr_baseline
from models.networks.efficientnet import TINYNETS, efficientnet_b0, tinynet
from models.networks.ghostnet import ghostnet
from models.networks.ghostnetv2 import ghostnetv2
from models.networks.mobilenetv2 import mobilenetv2
from models.networks.reactnet import reactnet_a
from models.networks.repghostnet import repghostnet
from models.networks.resnet import resnet18, resnet20, resnet50
from models.networks.vgg_small import vgg_small


@dataclass(frozen=True)
class ModelEntry:
    """One network: how to build it, what it eats, and what its authors say it costs.

    ``pe`` is the datapath kind most of its conv/linear layers use as built (``xnor`` for a
    binary network). ``published`` maps ``macs``/``params`` (or ``bops``/``flops``/``ops`` for
    binary networks) to the figures the ``citation`` reports; it is empty when none exist.
    """

    name: str
    factory: Callable[[], object]
    input_shape: tuple[int, ...]
    pe: str
    description: str
    published: dict[str, float] = field(default_factory=dict)
    citation: str = ""


_ENTRIES = (
    ModelEntry("ghostnet", ghostnet, (1, 3, 224, 224), "mac", "GhostNet 1.0x, ImageNet",
               {"macs": 141e6, "params": 5.2e6},
               "Han et al., GhostNet: More Features from Cheap Operations, CVPR 2020, Table 7"),
    ModelEntry("resnet18", resnet18, (1, 3, 224, 224), "mac", "ResNet-18, ImageNet",
               {"macs": 1.82e9, "params": 11.7e6},
               "He et al., Deep Residual Learning for Image Recognition, CVPR 2016, Table 1"),
    ModelEntry("resnet50", resnet50, (1, 3, 224, 224), "mac",
               "ResNet-50 (v1.5: stride on the 3x3 conv), ImageNet",
               {"macs": 4.1e9, "params": 25.6e6},
               "He et al., CVPR 2016, Table 1 (3.8e9 for the stride-on-1x1 original; 4.1e9 for v1.5)"),
    ModelEntry("mobilenetv2", mobilenetv2, (1, 3, 224, 224), "mac", "MobileNetV2 1.0, ImageNet",
               {"macs": 300e6, "params": 3.4e6},
               "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018, "
               "Table 4"),
    ModelEntry("resnet20", resnet20, (1, 3, 32, 32), "mac",
               "ResNet-20 with option-A shortcuts, CIFAR-10",
               {"macs": 41e6, "params": 0.27e6},
               "He et al., CVPR 2016, Table 6 (params); 41M MACs as the compression literature "
               "reports it"),
    ModelEntry("vgg-small", vgg_small, (1, 3, 32, 32), "mac",
               "VGG-Small (128-128-M-256-256-M-512-512-M-FC10), CIFAR-10", {},
               "Zhang et al., LQ-Nets, ECCV 2018 (architecture; no cost figures published)"),
    ModelEntry("birealnet18", birealnet18, (1, 3, 224, 224), "xnor",
               "Bi-Real Net 18 (binary 3x3 convs, real shortcut per conv), ImageNet",
               {"bops": 1.68e9, "flops": 1.39e8, "ops": 1.63e8},
               "Liu et al., Bi-Real Net, ECCV 2018, Table 4"),
    ModelEntry("digits-cnn", digits_cnn, (1, 1, 8, 8), "mac",
               "3-conv CNN for scikit-learn's 8x8 digits", {}, "hwsim's own small test network"),
    ModelEntry("addernet-resnet20", addernet_resnet20, (1, 3, 32, 32), "adder",
               "AdderNet ResNet-20 (adder convs and 1x1 shortcuts, real stem and classifier), CIFAR-10",
               {"macs": 41.17e6},
               "Chen et al., AdderNet: Do We Really Need Multiplications in Deep Learning?, CVPR 2020, "
               "Table 1 (82.34M additions = 2 x 41.17M)"),
    ModelEntry("addernet-resnet50", addernet_resnet50, (1, 3, 224, 224), "adder",
               "AdderNet ResNet-50 (adder convs, stride on the 3x3 as the authors' code), ImageNet",
               {"macs": 3.9e9},
               "Chen et al., CVPR 2020, Table 2 (7.7G additions = 2 x 3.9G; 3.9G is the stride-on-1x1 "
               "count, the authors' stride-on-3x3 code has 4.09G)"),
    ModelEntry("reactnet-a", reactnet_a, (1, 3, 224, 224), "xnor",
               "ReActNet-A (binary MobileNetV1 layout with full 3x3 convs, RSign, RPReLU), ImageNet",
               {"bops": 4.82e9, "flops": 0.12e8, "ops": 0.87e8},
               "Liu et al., ReActNet: Towards Precise Binary Neural Network with Generalized "
               "Activation Functions, ECCV 2020, Table 1"),
    ModelEntry("ghostnetv2", ghostnetv2, (1, 3, 224, 224), "mac",
               "GhostNetV2 1.0x (GhostNet with DFC attention on the expanding Ghost modules), ImageNet",
               {"macs": 167e6, "params": 6.1e6},
               "Tang et al., GhostNetV2: Enhance Cheap Operation with Long-Range Attention, "
               "NeurIPS 2022, ImageNet comparison table and abstract"),
    ModelEntry("repghostnet", repghostnet, (1, 3, 224, 224), "mac",
               "RepGhostNet 1.0x, re-parameterized for inference (no concatenation), ImageNet",
               {"macs": 142e6, "params": 4.1e6},
               "Chen et al., RepGhost: A Hardware-Efficient Ghost Module via Re-parameterization, "
               "arXiv:2211.06088, ImageNet results (the authors' README table)"),
    ModelEntry("efficientnet-b0", efficientnet_b0, (1, 3, 224, 224), "mac",
               "EfficientNet-B0 (MBConv with SiLU and squeeze-excite), ImageNet",
               {"macs": 0.39e9, "params": 5.3e6},
               "Tan and Le, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks, "
               "ICML 2019, Table 2"),
    ModelEntry("edsr-baseline-x4", edsr_baseline, (1, 3, 64, 64), "mac",
               "EDSR-baseline x4 super-resolution (16 residual blocks, 64 channels), 64x64 -> 256x256",
               {"params": 1.5e6},
               "Lim et al., Enhanced Deep Residual Networks for Single Image Super-Resolution, CVPRW "
               "2017, model specifications (parameters only; MACs depend on the image size)"),
)

#: TinyNet-A..E: the paper's ImageNet figures, (MACs, parameters).
_TINYNET_FIGURES = {"a": (339e6, 6.2e6), "b": (202e6, 3.7e6), "c": (100e6, 2.5e6), "d": (52e6, 2.3e6),
                    "e": (24e6, 2.0e6)}

_ENTRIES += tuple(
    ModelEntry(f"tinynet-{v}", partial(tinynet, v), (1, 3, r, r), "mac",
               f"TinyNet-{v.upper()}: EfficientNet-B0 at r={r}, w={w}, d={d}, ImageNet",
               {"macs": _TINYNET_FIGURES[v][0], "params": _TINYNET_FIGURES[v][1]},
               "Han et al., Model Rubik's Cube: Twisting Resolution, Depth and Width for TinyNets, "
               "NeurIPS 2020, ImageNet results (FLOPs also in the authors' README)")
    for v, (r, w, d) in TINYNETS.items())

#: Registry name -> entry, in the order above.
MODELS: dict[str, ModelEntry] = {entry.name: entry for entry in _ENTRIES}


def load_model(spec: str, input_shape: tuple[int, ...] | None = None
               ) -> tuple[nn.Module, tuple[int, ...], ModelEntry]:
    """Build the network that ``spec`` names and return it with its input shape and entry.

    ``input_shape`` (batch first) overrides the registry's or the factory's shape, and is
    required when a user factory returns a bare module. For user networks the entry is made on
    the spot (``name`` is the spec, ``pe`` the most common kind among its layers).
    Every bad spec raises a ``ValueError`` with a one-line message.
    """
    if ":" not in spec:
        if spec not in MODELS:
            raise ValueError(f"unknown model {spec!r}; choose one of {', '.join(MODELS)}, "
                             "or give path/to/file.py:factory or package.module:factory")
        entry = MODELS[spec]
        net, _ = _call(entry.factory, spec)
        return net, _check_shape(entry.input_shape if input_shape is None else input_shape), entry
    location, factory_name = spec.rsplit(":", 1)
    if not location or not factory_name:
        raise ValueError(f"model spec {spec!r} must be a registry name, path/to/file.py:factory "
                         "or package.module:factory")
    is_file = location.endswith(".py") or "/" in location or "\\" in location
    module = _import_file(location) if is_file else _import_module(location)
    factory = getattr(module, factory_name, None)
    if factory is None:
        raise ValueError(f"factory {factory_name!r} not found in {location!r}")
    if not callable(factory):
        raise ValueError(f"factory {spec!r} is {type(factory).__name__}, not callable")
    net, shape = _call(factory, spec)
    shape = shape if input_shape is None else input_shape
    if shape is None:
        raise ValueError(f"model {spec!r} has no input shape; return (module, input_shape) from "
                         "the factory or pass input_shape")
    shape = _check_shape(shape)
    doc = (factory.__doc__ or "").strip()
    entry = ModelEntry(spec, factory, shape, _native_pe(net), doc.splitlines()[0] if doc else "user model")
    return net, shape, entry


def _call(factory: Callable[[], object], spec: str) -> tuple[nn.Module, object]:
    """Call a factory; accept a module or a ``(module, input_shape)`` tuple."""
    try:
        result = factory()
    except Exception as exc:  # any failure inside user code is bad input, reported in one line
        raise ValueError(f"factory {spec!r} raised {_one_line(exc)}") from None
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], nn.Module):
        return result[0], result[1]
    if not isinstance(result, nn.Module):
        raise ValueError(f"factory {spec!r} returned {type(result).__name__}, not a torch.nn.Module")
    return result, None


def _import_file(location: str) -> ModuleType:
    path = Path(location).expanduser()
    if not path.is_file():
        raise ValueError(f"model file {location!r} does not exist")
    resolved = path.resolve()
    name = "_hwsim_user_model_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"model file {location!r} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    sys.path.insert(0, str(resolved.parent))
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # user code: syntax errors, failing imports ...
        del sys.modules[name]
        raise ValueError(f"cannot import model file {location!r}: {_one_line(exc)}") from None
    finally:
        sys.path.remove(str(resolved.parent))
    return module


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # user code: missing module, failing imports inside it ...
        raise ValueError(f"cannot import module {name!r}: {_one_line(exc)}") from None


def _check_shape(shape: object) -> tuple[int, ...]:
    if (not isinstance(shape, (tuple, list)) or len(shape) < 2
            or any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in shape)):
        raise ValueError(f"input shape must be a tuple of positive integers with the batch first, "
                         f"not {shape!r}")
    return tuple(shape)


def _native_pe(net: nn.Module) -> str:
    """The PE kind most conv/linear layers of ``net`` use (``mac`` if it has none)."""
    kinds = Counter(kind for kind in map(pe_kind_of, net.modules()) if kind is not None)
    return kinds.most_common(1)[0][0] if kinds else "mac"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__

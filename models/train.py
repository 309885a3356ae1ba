"""Train one network per PE kind, seeded, deterministic and cached.

A PE-kind *variant* of a float network is :func:`models.convert.convert` with the literature's
policy (first conv and classifier stay full-precision MAC; for ``xnor`` the ReLUs feeding binary
layers are dropped). Each variant is then trained from scratch (or
fine-tuned from a checkpoint) with its own layers' gradients: AdderNet's full-precision weight
gradient, HardTanh input gradient and adaptive learning rate for ``adder``, the straight-through
estimators of :mod:`models.layers` for ``xnor`` and ``shift``.

Training is SGD with Nesterov momentum, a cosine learning-rate schedule, label smoothing and
random +-1 pixel shifts of the training images; it is reproducible bit for bit: the seed fixes
initialisation and batch order, deterministic algorithms are enforced and torch runs on one
thread while training. Trained weights are cached by a key that covers the data, the
architecture, the PE kind, the seed, the epochs, the checkpoint and this code.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.convert import convert
from models.data import Split

__all__ = ["TrainConfig", "accuracy", "cache_key", "train", "train_cached"]

#: Source files whose behaviour the trained weights depend on (part of the cache key).
_CODE = ("train.py", "layers.py", "convert.py", "data.py")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run; ``lr`` None picks the PE kind's default.

    The defaults reach >= 97% (mac), 95% (adder, shift) and 85% (xnor) on the digits test split.
    """

    epochs: int = 30
    seed: int = 0
    batch_size: int = 64
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1


#: Default learning rate per PE kind; adder layers rescale their own gradient (eta), so their
#: step is set by eta and this rate only moves the BN and full-precision layers.
_LR = {"mac": 0.05, "adder": 0.05, "shift": 0.2, "xnor": 0.5}
#: Learning-rate multiplier of DeepShift's sign and shift parameters: a code only changes when
#: its real value crosses a rounding boundary, half a unit away.
_CODE_LR = 20.0


@contextlib.contextmanager
def _deterministic(seed: int) -> Iterator[None]:
    """Seeded, deterministic, single-threaded torch for the duration of a training run."""
    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(was_deterministic)


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by -1, 0 or +1 pixel in each direction (zero fill)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1))
    dy, dx = torch.randint(0, 3, (2, n), generator=generator)
    rows = (torch.arange(h)[None, :] + dy[:, None])[:, None, :, None].expand(n, x.shape[1], h, w + 2)
    out = padded.gather(2, rows)
    cols = (torch.arange(w)[None, :] + dx[:, None])[:, None, None, :].expand(n, x.shape[1], h, w)
    return out.gather(3, cols)


def train(net: nn.Module, pe: str, data: Split, config: TrainConfig,
          progress: Callable[[int, float], None] | None = None) -> nn.Module:
    """Train ``net`` (a variant of kind ``pe``) in place on ``data.x_train``; return it in eval mode.

    ``progress(epoch, loss)`` is called after each epoch (1-based) with the mean training loss.
    """
    lr = config.lr if config.lr is not None else _LR[pe]
    with _deterministic(config.seed):
        generator = torch.Generator().manual_seed(config.seed)
        decay, no_decay, codes = [], [], []
        for name, p in net.named_parameters():
            group = codes if name.endswith((".sign", ".shift")) else no_decay if p.ndim <= 1 else decay
            group.append(p)
        optimizer = torch.optim.SGD([{"params": decay, "weight_decay": config.weight_decay},
                                     {"params": no_decay, "weight_decay": 0.0},
                                     {"params": codes, "weight_decay": 0.0, "lr": lr * _CODE_LR}],
                                    lr=lr, momentum=config.momentum, nesterov=True)
        n = len(data.y_train)
        steps = max(1, config.epochs * math.ceil(n / config.batch_size))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps)))
        net.train()
        for epoch in range(1, config.epochs + 1):
            order = torch.randperm(n, generator=generator)
            total = 0.0
            for start in range(0, n, config.batch_size):
                idx = order[start:start + config.batch_size]
                x = _augment(data.x_train[idx], generator)
                loss = F.cross_entropy(net(x), data.y_train[idx],
                                       label_smoothing=config.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total += float(loss.detach()) * len(idx)
            if progress is not None:
                progress(epoch, total / n)
    return net.eval()


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of the float forward of ``net`` (eval mode) on ``x``."""
    net.eval()
    with torch.no_grad():
        return float((net(x).argmax(dim=1) == y).float().mean())


def _code_version() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in _CODE:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def _state_digest(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def cache_key(net: nn.Module, pe: str, data: Split, config: TrainConfig) -> str:
    """Hash of everything the trained weights depend on: ``net`` is the untrained variant, whose
    architecture and initial weights (from a checkpoint or the seed) both count."""
    parts = [data.digest, repr(net), _state_digest(net.state_dict()), pe,
             repr(sorted(asdict(config).items())), _code_version(), torch.__version__]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _save_atomic(state: dict[str, torch.Tensor], path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        fh.write(buffer.getvalue())
    os.replace(tmp, path)


def train_cached(base: nn.Module, pe: str, data: Split, config: TrainConfig, cache_dir: Path | None,
                 init: dict[str, torch.Tensor] | None = None,
                 progress: Callable[[int, float], None] | None = None) -> tuple[nn.Module, bool]:
    """The trained ``pe`` variant of ``base`` and whether it came from the cache.

    ``init`` (a state_dict of ``base``) is loaded before conversion, so every variant starts from
    it; ``config.epochs`` 0 then evaluates it as it is. ``cache_dir`` None disables the cache.
    """
    base = copy.deepcopy(base)
    if init is not None:
        base.load_state_dict(init)
    with _deterministic(config.seed):  # conversion draws the new layers' initial weights
        net = convert(base, pe, input_shape=data.input_shape)
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{pe}-{cache_key(net, pe, data, config)}.pt"
        if path.is_file():
            net.load_state_dict(torch.load(path, weights_only=True))
            return net.eval(), True
    train(net, pe, data, config, progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_atomic(net.state_dict(), path)
    return net, False


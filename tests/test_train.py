"""Training: data loaders and their errors, xnor variants, determinism and the weight cache."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
import torch
from torch import nn

from models.convert import convert
from models.data import load_data, load_digits, load_folder, load_npz
from models.networks.digits import digits_cnn
from models.train import TrainConfig, train, train_cached


@pytest.fixture(scope="module")
def small():
    """A 200-image slice of digits (keeps training in the tests to a fraction of a second)."""
    data = load_digits()
    return type(data)(data.name, data.x_train[:200], data.y_train[:200], data.x_test[:100],
                      data.y_test[:100], data.classes, data.digest + "-small")


def test_digits_split_is_fixed_stratified_and_held_out():
    a, b = load_digits(), load_digits()
    assert a.digest == b.digest and torch.equal(a.x_test, b.x_test)
    assert len(a.y_test) == 449 and len(a.y_train) == 1348 and a.input_shape == (1, 1, 8, 8)
    assert set(a.y_test.tolist()) == set(range(10)) and 0 <= float(a.x_train.min()) < float(a.x_train.max()) <= 1


def test_npz_and_folder_loaders(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 6, 5), dtype=np.uint8)
    y = np.repeat([3, 7], 20)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = load_data(tmp_path / "d.npz")
    assert data.input_shape == (1, 1, 6, 5) and data.classes == ("3", "7")
    assert len(data.y_train) + len(data.y_test) == 40 and float(data.x_train.max()) <= 1
    for label in ("a", "b"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(4):
            matplotlib.image.imsave(tmp_path / "imgs" / label / f"{i}.png", x[i], cmap="gray")
    folder = load_folder(tmp_path / "imgs")
    assert folder.classes == ("a", "b") and folder.input_shape == (1, 1, 6, 5)


def test_loaders_wrong(tmp_path):
    np.savez(tmp_path / "m.npz", x=np.zeros((5, 4, 4)), y=np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match=r"^'.*m\.npz': `x` holds 5 images but `y` 4 labels; give one label per image$"):
        load_npz(tmp_path / "m.npz")
    np.savez(tmp_path / "k.npz", images=np.zeros((5, 4, 4)))
    with pytest.raises(ValueError, match=r"lacks the array\(s\) x, y"):
        load_npz(tmp_path / "k.npz")
    with pytest.raises(ValueError, match=r"^data folder '.*nowhere' does not exist or is not a folder"):
        load_data(tmp_path / "nowhere")
    (tmp_path / "one" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"needs at least two class subfolders"):
        load_data(tmp_path / "one")


def test_training_is_deterministic_and_learns(small):
    config = TrainConfig(epochs=2, batch_size=50)
    nets = [train(convert(_seeded(), "shift", input_shape=small.input_shape), "shift", small, config)
            for _ in range(2)]
    a, b = (n.state_dict() for n in nets)
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = []
    train(convert(_seeded(), "mac", input_shape=small.input_shape), "mac", small, TrainConfig(epochs=3),
          progress=lambda epoch, loss: losses.append(loss))
    assert len(losses) == 3 and losses[-1] < losses[0]


def _seeded() -> nn.Module:
    torch.manual_seed(0)
    return digits_cnn()


def test_cache_reuses_trained_weights(small, tmp_path):
    config = TrainConfig(epochs=1)
    first, hit1 = train_cached(_seeded(), "adder", small, config, tmp_path)
    second, hit2 = train_cached(_seeded(), "adder", small, config, tmp_path)
    assert (hit1, hit2) == (False, True) and len(list(tmp_path.glob("adder-*.pt"))) == 1
    assert all(torch.equal(v, second.state_dict()[k]) for k, v in first.state_dict().items())
    _, hit3 = train_cached(_seeded(), "adder", small, TrainConfig(epochs=1, seed=1), tmp_path)
    _, hit4 = train_cached(digits_cnn(), "adder", small, config, tmp_path)  # other initial weights
    assert not hit3 and not hit4

"""load_model(): registry names, user files and modules, and every bad spec's one-line error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from models.registry import MODELS, ModelEntry, load_model

NAMES = ["ghostnet", "resnet18", "resnet50", "mobilenetv2", "resnet20", "vgg-small", "birealnet18",
         "digits-cnn", "addernet-resnet20", "addernet-resnet50", "reactnet-a", "ghostnetv2", "repghostnet",
         "efficientnet-b0", "edsr-baseline-x4", "tinynet-a", "tinynet-b", "tinynet-c", "tinynet-d", "tinynet-e"]

USER_FILE = """
from torch import nn


def make():
    '''A tiny user network.'''
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)), (1, 1, 8, 8)


def bare():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))


def broken():
    raise RuntimeError("no weights here")


def number():
    return 42


NOT_A_FACTORY = 7
"""


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "user_net.py"
    path.write_text(USER_FILE)
    return path


def test_registry_names() -> None:
    assert list(MODELS) == NAMES
    assert all(isinstance(e, ModelEntry) and e.name == n for n, e in MODELS.items())
    assert {n for n, e in MODELS.items() if e.pe == "xnor"} == {"birealnet18", "reactnet-a"}


def test_load_registry_model() -> None:
    net, shape, entry = load_model("digits-cnn")
    assert shape == (1, 1, 8, 8) and entry is MODELS["digits-cnn"]
    with torch.no_grad():
        assert net(torch.zeros(shape)).shape == (1, 10)


def test_load_registry_model_with_other_input_shape() -> None:
    net, shape, _ = load_model("resnet20", input_shape=(2, 3, 64, 64))
    assert shape == (2, 3, 64, 64)
    with torch.no_grad():
        assert net(torch.zeros(shape)).shape == (2, 10)


def test_registry_figures_are_cited() -> None:
    for entry in MODELS.values():
        assert entry.description and entry.citation
        assert set(entry.published) <= {"macs", "params", "bops", "flops", "ops"}


def test_load_user_file(user_file: Path) -> None:
    net, shape, entry = load_model(f"{user_file}:make")
    assert shape == (1, 1, 8, 8)
    assert (entry.name, entry.input_shape, entry.pe, entry.description) == \
        (f"{user_file}:make", shape, "mac", "A tiny user network.")
    assert net(torch.zeros(shape)).shape == (1, 3)


def test_load_user_file_bare_module_with_input_shape(user_file: Path) -> None:
    net, shape, entry = load_model(f"{user_file}:bare", input_shape=(1, 1, 8, 8))
    assert isinstance(net, nn.Sequential) and shape == (1, 1, 8, 8)
    assert entry.description == "user model"


def test_load_package_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "hwsim_test_user_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(USER_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    net, shape, entry = load_model("hwsim_test_user_pkg.nets:make")
    assert shape == (1, 1, 8, 8) and entry.name == "hwsim_test_user_pkg.nets:make"
    assert net(torch.zeros(shape)).shape == (1, 3)


def test_load_user_file_importing_its_neighbour(tmp_path: Path) -> None:
    (tmp_path / "hwsim_test_neighbour.py").write_text("from torch import nn\nWIDTH = 5\n")
    path = tmp_path / "uses_neighbour.py"
    path.write_text("from torch import nn\nfrom hwsim_test_neighbour import WIDTH\n\n"
                    "def make():\n    return nn.Linear(WIDTH, 2), (1, 5)\n")
    net, shape, _ = load_model(f"{path}:make")
    assert net.in_features == 5 and shape == (1, 5)


def test_unknown_model_wrong() -> None:
    with pytest.raises(ValueError, match=rf"^unknown model 'resnet19'; choose one of {', '.join(NAMES)}, "
                                         r"or give path/to/file.py:factory or package.module:factory$"):
        load_model("resnet19")


def test_missing_file_wrong(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.py"
    with pytest.raises(ValueError, match=rf"^model file '{re.escape(str(path))}' does not exist$"):
        load_model(f"{path}:make")


def test_file_that_fails_to_import_wrong(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text("import torch\nraise ImportError('needs torchvision\\nsecond line')\n")
    with pytest.raises(ValueError, match=rf"^cannot import model file '{re.escape(str(path))}': "
                                         r"ImportError: needs torchvision$"):
        load_model(f"{path}:make")


def test_module_not_importable_wrong() -> None:
    with pytest.raises(ValueError, match=r"^cannot import module 'no_such_pkg_hwsim.nets': "
                                         r"ModuleNotFoundError: No module named 'no_such_pkg_hwsim'$"):
        load_model("no_such_pkg_hwsim.nets:make")


def test_factory_not_found_wrong(user_file: Path) -> None:
    with pytest.raises(ValueError, match=rf"^factory 'missing' not found in '{re.escape(str(user_file))}'$"):
        load_model(f"{user_file}:missing")


def test_factory_not_callable_wrong(user_file: Path) -> None:
    spec = re.escape(f"{user_file}:NOT_A_FACTORY")
    with pytest.raises(ValueError, match=rf"^factory '{spec}' is int, not callable$"):
        load_model(f"{user_file}:NOT_A_FACTORY")


def test_factory_raises_wrong(user_file: Path) -> None:
    spec = re.escape(f"{user_file}:broken")
    with pytest.raises(ValueError, match=rf"^factory '{spec}' raised RuntimeError: no weights here$"):
        load_model(f"{user_file}:broken")


def test_factory_returns_non_module_wrong(user_file: Path) -> None:
    spec = re.escape(f"{user_file}:number")
    with pytest.raises(ValueError, match=rf"^factory '{spec}' returned int, not a torch.nn.Module$"):
        load_model(f"{user_file}:number")


def test_missing_input_shape_wrong(user_file: Path) -> None:
    spec = re.escape(f"{user_file}:bare")
    with pytest.raises(ValueError, match=rf"^model '{spec}' has no input shape; return \(module, "
                                         r"input_shape\) from the factory or pass input_shape$"):
        load_model(f"{user_file}:bare")


def test_bad_input_shape_wrong() -> None:
    with pytest.raises(ValueError, match=r"^input shape must be a tuple of positive integers with the "
                                         r"batch first, not \(3, 0\)$"):
        load_model("digits-cnn", input_shape=(3, 0))


@pytest.mark.parametrize("spec", ["user.py:", ":make"])
def test_incomplete_spec_wrong(spec: str) -> None:
    with pytest.raises(ValueError, match=rf"^model spec '{re.escape(spec)}' must be a registry name, "
                                         r"path/to/file.py:factory or package.module:factory$"):
        load_model(spec)

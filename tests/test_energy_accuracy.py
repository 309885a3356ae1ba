"""``hwsim report energy-accuracy`` and ``hwsim report network``: files, fields, consistency with
``hwsim estimate``, an independent integer evaluation, and one-line errors for bad input."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch

from hwsim_cli import main as hwsim_main
from hwsim.errors import HwsimError
from hwsim.extract import extract
from hwsim.reports import energy_accuracy, network
from hwsim.reports.variants import accelerator_for
from hwsim.simulate import estimate
from models import intnet
from models.intref import int_forward
from models.quant import quantize_input
from models.train import train_cached

PNG = b"\x89PNG\r\n\x1a\n"
FILES = {"report.md", "report.html", "results.json", "results.csv", "energy_split.png", "layer_energy.png"}


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    """A reduced run (mac and shift, 4 and 8 bits, 2 epochs) written to a folder."""
    cache = tmp_path_factory.mktemp("cache")
    result = energy_accuracy.run(pes="mac,shift", bits="4,8", epochs=2, cache_dir=cache,
                                 schemes="mac,shift")
    out = tmp_path_factory.mktemp("report")
    energy_accuracy.write(result, out)
    return result, out, cache


class _Html(HTMLParser):
    """Collects tags and the URLs a page would fetch; checks that every tag closes."""

    VOID = {"meta", "img", "br", "hr", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.sources: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.sources += [v for k, v in attrs if k in ("src", "href")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack.pop() == tag


def test_files_fields_and_plots(reduced):
    result, out, _ = reduced
    assert {p.name for p in out.iterdir()} == FILES | {"accuracy_energy.png"}
    data = json.loads((out / "results.json").read_text())
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert [(r["pe"], int(r["bits"])) for r in rows] == [("mac", 4), ("mac", 8), ("shift", 4), ("shift", 8)]
    for row, variant in zip(rows, data["variants"]):
        assert set(row) <= set(variant) and float(row["energy_uj"]) == pytest.approx(variant["energy_uj"])
        assert 0 <= variant["int_accuracy"] <= 1 and len(variant["layers"]) > 5
    assert data["data"]["test_images"] == 449 and data["training"]["epochs"] == 2
    assert any(v["pareto"] for v in data["variants"])
    for name in ("accuracy_energy.png", "layer_energy.png", "energy_split.png"):
        assert (out / name).read_bytes().startswith(PNG)
    md = (out / "report.md").read_text()
    assert "| mac | 8b |" in md and "![" in md and "integer acc." in md
    page = _Html()
    page.feed((out / "report.html").read_text())
    assert not page.stack and page.tags.count("img") == 3
    assert all(src.startswith("data:image/png;base64,") for src in page.sources)
    html_text = (out / "report.html").read_text()
    assert "<strong>digits</strong>" in html_text and "**" not in html_text  # Markdown bold rendered


def test_energy_equals_hwsim_estimate(reduced, capsys, tmp_path):
    result, out, _ = reduced
    data = json.loads((out / "results.json").read_text())
    for v, row in zip(result.variants, data["variants"]):
        again = estimate(extract(_net(result, v.pe, reduced[2]), (1, 1, 8, 8), bits=v.bits, name="digits-cnn"),
                         accelerator_for(v.pe, v.bits))
        assert row["energy_uj"] == again.energy_uj and row["cycles"] == again.cycles
        assert row["area_mm2"] == again.totals()["area_mm2"]
        # and the same as the command line (mac and shift variants are convert()'s, as the CLI's)
        js = tmp_path / f"{v.pe}{v.bits}.json"
        assert hwsim_main(["estimate", "digits-cnn", "--pe", v.pe, "--bits", str(v.bits),
                           "--compare", "none", "--json", str(js)]) == 0
        assert json.loads(js.read_text())["totals"]["energy_uj"] == pytest.approx(row["energy_uj"], rel=1e-12)
    capsys.readouterr()


def _net(result, pe: str, cache: Path) -> torch.nn.Module:
    """The cached trained variant of the reduced run (a cache hit, no training)."""
    torch.manual_seed(result.config.seed)
    base = energy_accuracy.TRAINABLE["digits-cnn"](num_classes=10)
    net, hit = train_cached(base, pe, result.data, result.config, cache)
    assert hit
    return net


def _naive_predictions(inet: intnet.IntNet, x: torch.Tensor) -> list[int]:
    """One image at a time: intref per layer, pooling as a plain mean rounded half up."""
    preds = []
    for image in x:
        y = quantize_input(inet.layers[0], image[None])
        for stage in inet.stages:
            if stage.op == "layer":
                y = int_forward(stage.q, y)
            elif stage.op == "avgpool":  # global average pool in the digits CNN
                assert stage.kernel == y.shape[2:]
                y = np.floor(y.sum(axis=(2, 3), keepdims=True) / y[0, 0].size + 0.5).astype(np.int64)
            elif stage.op == "flatten":
                y = y.reshape(1, -1)
            else:
                y = (y >= 0).astype(np.int64)
        preds.append(int(np.argmax(y[0])))
    return preds


def test_integer_accuracy_equals_naive_evaluation(reduced):
    result, _, cache = reduced
    for v in result.variants:
        if v.bits != 4:
            continue
        net = _net(result, v.pe, cache)
        inet = intnet.build(net, result.data.x_train[:energy_accuracy.CALIB_IMAGES], bits=v.bits,
                            scheme=result.quantization.scheme(v.scheme))
        preds = np.array(_naive_predictions(inet, result.data.x_test))
        assert v.int_accuracy == float((preds == result.data.y_test.numpy()).mean())


def test_cached_rerun_reuses_weights(reduced):
    result, _, cache = reduced
    again = energy_accuracy.run(pes="mac", bits="8", epochs=2, cache_dir=cache, schemes="mac")
    assert again.cached == {"mac": True}
    assert again.variants[0].int_accuracy == result.variants[1].int_accuracy


def _npz(tmp_path: Path, n_labels: int) -> str:
    np.savez(tmp_path / "d.npz", x=np.zeros((10, 8, 8)), y=np.zeros(n_labels, dtype=int))
    return str(tmp_path / "d.npz")


@pytest.mark.parametrize("options, message", [
    (dict(pes="mac,fpga"), r"^unknown PE kind 'fpga'; give a comma-separated list of mac, adder, xnor, shift$"),
    (dict(pes="xnor", bits="8"), r"^--bits 8 is not supported by xnor \(xnor runs at 1 bit only\); fix --bits or --pe$"),
    (dict(pes="mac", bits="1"), r"^mac cannot run at 1 bit \(they need 2\.\.16 bits\); 1 bit is the xnor datapath"),
    (dict(pes="mac,xnor", bits="8"), r"^--bits 8 leaves xnor without a width; include 1$"),
    (dict(data="/nonexistent/folder"), r"^data folder '/nonexistent/folder' does not exist or is not a folder"),
    (dict(model="resnet18"), r"^model 'resnet18' cannot be trained here; choose one of digits-cnn"),
])
def test_bad_input_is_one_line(options, message):
    with pytest.raises(HwsimError, match=message):
        energy_accuracy.run(epochs=0, cache_dir=None, **options)


def test_bad_files_are_one_line(tmp_path):
    with pytest.raises(HwsimError, match=r"`x` holds 10 images but `y` 9 labels; give one label per image$"):
        energy_accuracy.run(data=_npz(tmp_path, 9), cache_dir=None)
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "bad.pt")
    with pytest.raises(HwsimError, match=r"^checkpoint '.*bad\.pt' does not fit digits-cnn \(.*\); give the "
                                         r"state_dict of the same architecture$"):
        energy_accuracy.run(pes="mac", checkpoint=str(tmp_path / "bad.pt"), cache_dir=None)


def test_checkpoint_is_evaluated_as_is_with_zero_epochs(reduced, tmp_path):
    result, _, cache = reduced
    mac = _net(result, "mac", cache)
    torch.save(mac.state_dict(), tmp_path / "mac.pt")
    again = energy_accuracy.run(pes="mac", bits="4", epochs=0, checkpoint=str(tmp_path / "mac.pt"),
                                cache_dir=None)
    assert again.variants[0].int_accuracy == result.variants[0].int_accuracy


def test_network_report_quotes_literature(tmp_path):
    result = network.run("resnet18", pes="mac,adder", bits="8")
    network.write(result, tmp_path)
    assert FILES <= {p.name for p in tmp_path.iterdir()}
    md = (tmp_path / "report.md").read_text()
    assert "quoted, not reproduced" in md and "| adder | 67.0% |" in md and "| mac | 69.8% |" in md
    data = json.loads((tmp_path / "results.json").read_text())
    assert [p["top1"] for p in data["published"]] == [69.8, 67.0]
    with pytest.raises(HwsimError, match=r"^unknown model 'resnet9'"):
        network.run("resnet9")

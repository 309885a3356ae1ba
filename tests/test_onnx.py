"""hwsim.onnx_import: hand-built ONNX/QONNX graphs with hand-counted MACs and parameters, and
registry networks exported by torch.onnx.export costing exactly what the PyTorch path costs."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

from hwsim.api import resolve_accelerator, workloads  # noqa: E402
from hwsim.errors import HwsimError  # noqa: E402
from hwsim.extract import extract  # noqa: E402
from hwsim.onnx_import import read_onnx  # noqa: E402
from hwsim.simulate import estimate  # noqa: E402
from hwsim.workload import NETWORK_INPUT  # noqa: E402

QONNX = "qonnx.custom_op.general"
F = TensorProto.FLOAT


def _init(name: str, *shape: int, value: float | None = None) -> onnx.TensorProto:
    data = np.full(shape, value, np.float32) if value is not None else np.ones(shape, np.float32)
    return numpy_helper.from_array(data, name)


def _save(tmp_path: Path, nodes: list, inits: list, x_shape: list, y_shape: list | None = None,
          name: str = "g", opset: int = 17) -> Path:
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", F, x_shape)],
                              [helper.make_tensor_value_info("y", F, y_shape)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset),
                                                    helper.make_opsetid(QONNX, 1)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def _cnn(tmp_path: Path, x_shape: list | None = None) -> Path:
    """3x8x8 -> conv 3x3/2 pad 1 (4, bias) -> ReLU -> depthwise 3x3 dilation 2 SAME_UPPER ->
    global pool -> flatten -> Gemm 4 -> 10."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="dw", group=4, dilations=[2, 2],
                         auto_pad="SAME_UPPER"),
        helper.make_node("GlobalAveragePool", ["c2"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1),
    ]
    inits = [_init("w1", 4, 3, 3, 3), _init("b1", 4), _init("w2", 4, 1, 3, 3), _init("wf", 10, 4),
             _init("bf", 10)]
    return _save(tmp_path, nodes, inits, x_shape or [1, 3, 8, 8], [1, 10], "cnn")


def test_hand_counted_cnn(tmp_path: Path) -> None:
    w = read_onnx(_cnn(tmp_path))
    by_name = {layer.name: layer for layer in w.layers}
    assert [layer.name for layer in w.layers] == ["conv1", "relu1", "dw", "pool", "fc"]  # flatten free
    assert by_name["conv1"].macs == 4 * 4 * (3 * 9) * 4           # 16 outputs x K 27 x N 4
    assert by_name["dw"].macs == 4 * 4 * 9 * 4                    # depthwise, dilation keeps 9 taps
    assert by_name["fc"].macs == 4 * 10
    assert w.macs == 1728 + 576 + 40
    assert w.params == (108 + 4) + 36 + (40 + 10)
    dw = by_name["dw"]
    assert (dw.groups, dw.out_h, dw.padding, dw.detail) == (4, 4, (2, 2), "Conv dilation 2x2")
    assert (by_name["conv1"].stride, by_name["conv1"].padding, by_name["conv1"].bias) == ((2, 2), (1, 1), True)
    pool = by_name["pool"]
    assert (pool.op, pool.kernel, pool.vector_ops) == ("avgpool", (4, 4), 4 * 16)
    assert by_name["relu1"].op == "act" and by_name["relu1"].vector_ops == 64


def test_attention_matmuls_and_fused_bias(tmp_path: Path) -> None:
    """x (1, 5, 6): q = x Wq + b (one linear with bias), s = softmax(q q^T), o = s q; batched
    MatMul over (2, 3, 5, 8) rows counts every row."""
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["qm"], name="q"),
        helper.make_node("Add", ["qm", "bq"], ["qq"], name="q_bias"),
        helper.make_node("Transpose", ["qq"], ["qt"], name="t", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["qq", "qt"], ["s"], name="scores"),
        helper.make_node("Softmax", ["s"], ["a"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["a", "qq"], ["o"], name="av"),
        helper.make_node("Expand", ["o", "shape"], ["e"], name="expand"),
        helper.make_node("MatMul", ["e", "wo"], ["y"], name="batched"),
    ]
    inits = [_init("wq", 6, 8), _init("bq", 8), _init("wo", 8, 4),
             numpy_helper.from_array(np.array([2, 3, 5, 8], np.int64), "shape")]
    w = read_onnx(_save(tmp_path, nodes, inits, [1, 5, 6], [2, 3, 5, 4]))
    by_name = {layer.name: layer for layer in w.layers}
    assert list(by_name) == ["q", "scores", "softmax", "av", "batched"]
    assert (by_name["q"].macs, by_name["q"].params, by_name["q"].bias) == (5 * 6 * 8, 56, True)
    assert (by_name["scores"].macs, by_name["scores"].params, by_name["scores"].detail) == (5 * 8 * 5, 0, "matmul")
    assert by_name["av"].macs == 5 * 5 * 8
    assert by_name["softmax"].vector_ops == 25
    assert (by_name["batched"].batch, by_name["batched"].macs) == (30, 30 * 8 * 4)
    # functional matmuls stay mac on conversion, as hwsim.extract.retarget keeps them
    adder, = workloads(str(tmp_path / "g.onnx"), [("adder", 8)], convert_all=True)
    assert {layer.name: layer.pe for layer in adder.layers if layer.is_compute} == {
        "q": "adder", "scores": "mac", "av": "mac", "batched": "adder"}


def test_weight_on_the_left_and_vector_right_side(tmp_path: Path) -> None:
    """W (4x6) @ x (1, 6, 5): 4 rows of 6 per output column; x (1, 5, 6) @ v (6,): 5 dot products."""
    left = _save(tmp_path, [helper.make_node("MatMul", ["w", "x"], ["y"], name="wx")],
                 [_init("w", 4, 6)], [1, 6, 5], [1, 4, 5], "left")
    layer, = read_onnx(left).layers
    assert (layer.macs, layer.params, layer.detail) == (4 * 6 * 5, 24, "MatMul")
    vec = _save(tmp_path, [helper.make_node("MatMul", ["x", "v"], ["y"], name="xv")],
                [_init("v", 6)], [1, 5, 6], [1, 5], "vec")
    layer, = read_onnx(vec).layers
    assert (layer.batch, layer.out_ch, layer.macs, layer.params) == (5, 1, 30, 6)


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q, self.o = nn.Linear(6, 8), nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.q(x)
        return self.o(torch.softmax(q @ q.transpose(-1, -2), -1) @ q)


def _export(net: nn.Module, shape: tuple[int, ...], path: Path) -> Path:
    """Eval-mode export that keeps BatchNormalization nodes (as extract keeps norm layers)."""
    net.eval()
    torch.onnx.export(net, torch.zeros(shape), str(path), dynamo=False,
                      training=torch.onnx.TrainingMode.PRESERVE)
    return path


def _same_layers(a, b) -> None:
    """Layer for layer equal but for names and ``detail`` (ONNX node names, op types); the
    data-flow edges the same, as positions of the layers read (-1: the network input)."""
    assert len(a.layers) == len(b.layers)
    for x, y in zip(a.layers, b.layers):
        assert dataclasses.replace(x, name="", detail="", inputs=None) == dataclasses.replace(
            y, name="", detail="", inputs=None)
    assert _edges(a) == _edges(b)


def _edges(workload) -> list:
    index = {layer.name: i for i, layer in enumerate(workload.layers)} | {NETWORK_INPUT: -1}
    return [None if l.inputs is None else sorted(index[n] for n in l.inputs) for l in workload.layers]


@pytest.mark.filterwarnings("ignore")
def test_exported_attention_equals_extract(tmp_path: Path) -> None:
    """nn.Linear on 3-D input exports as MatMul + Add: still one biased linear layer."""
    path = _export(_Attention(), (1, 5, 6), tmp_path / "attn.onnx")
    _same_layers(extract(_Attention(), (1, 5, 6)), read_onnx(path))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Each registry network exported once per test module."""
    from models.registry import load_model

    folder, made = tmp_path_factory.mktemp("onnx"), {}

    def get(name: str) -> Path:
        if name not in made:
            net, shape, _ = load_model(name)
            with warnings.catch_warnings():  # the TorchScript exporter's deprecation notes
                warnings.simplefilter("ignore")
                made[name] = _export(net, shape, folder / f"{name}.onnx")
        return made[name]

    return get


@pytest.mark.parametrize("name", ["ghostnet", "resnet18", "resnet20", "digits-cnn"])
@pytest.mark.parametrize("pe", ["mac", "adder", "xnor", "shift"])
def test_registry_network_costs_the_same_from_onnx(exported: Callable[[str], Path], name: str, pe: str) -> None:
    """MACs per kind, params, every layer field, cycles and energy equal the module path, for
    the network as built (mac) and converted (first and last kept mac). resnet20's option-A
    shortcut exports its pads as an unfolded constant subgraph."""
    acc = resolve_accelerator(pe=pe)
    module, = workloads(name, [(acc.pe, acc.bits)])
    graph, = workloads(str(exported(name)), [(acc.pe, acc.bits)])
    _same_layers(module, graph)
    assert graph.macs_by_pe() == module.macs_by_pe() and graph.params == module.params
    want, got = estimate(module, acc).totals(), estimate(graph, acc).totals()
    assert got["cycles"] == want["cycles"] and got["macs"] == want["macs"]
    assert got["energy_uj"] == pytest.approx(want["energy_uj"], rel=1e-6)


def test_convert_all_matches(exported: Callable[[str], Path]) -> None:
    module, = workloads("digits-cnn", [("adder", 8)], convert_all=True)
    graph, = workloads(str(exported("digits-cnn")), [("adder", 8)], convert_all=True)
    _same_layers(module, graph)
    assert set(graph.macs_by_pe()) == {"adder"}


def _qonnx(tmp_path: Path) -> Path:
    """stem conv (float) -> Quant 4 -> conv (Quant 4 weights) -> BipolarQuant -> 4 binary convs
    (BipolarQuant weights), a ReLU after the first -> two more -> pool -> Gemm (float). All 3x3 pad 1 on 4x4."""
    def quant(src: str, out: str, bits: str) -> list:
        return [helper.make_node("Quant", [src, "one", "zero", bits], [out], name=f"q_{out}",
                                 domain=QONNX, signed=1, narrow=0, rounding_mode="ROUND")]

    def bipolar(src: str, out: str) -> list:
        return [helper.make_node("BipolarQuant", [src, "one"], [out], name=f"b_{out}", domain=QONNX)]

    def conv(x: str, w: str, out: str) -> list:
        return [helper.make_node("Conv", [x, w], [out], name=out, kernel_shape=[3, 3], pads=[1] * 4)]

    nodes = (conv("x", "w0", "stem") + quant("stem", "a1", "four") + quant("w1", "w1q", "four")
             + conv("a1", "w1q", "conv4") + bipolar("conv4", "a2") + bipolar("w2", "w2q")
             + conv("a2", "w2q", "bin1") + [helper.make_node("Relu", ["bin1"], ["r"], name="relu")]
             + bipolar("r", "a3") + bipolar("w3", "w3q") + conv("a3", "w3q", "bin2")
             + bipolar("bin2", "a4") + bipolar("w4", "w4q") + conv("a4", "w4q", "bin3")
             + bipolar("bin3", "a5") + bipolar("w5", "w5q") + conv("a5", "w5q", "bin4")
             + [helper.make_node("GlobalAveragePool", ["bin4"], ["p"], name="pool"),
                helper.make_node("Flatten", ["p"], ["f"], name="flat"),
                helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc", transB=1)])
    inits = [_init("w0", 8, 3, 3, 3), _init("w1", 8, 8, 3, 3), _init("w2", 8, 8, 3, 3),
             _init("w3", 8, 8, 3, 3), _init("w4", 8, 8, 3, 3), _init("w5", 8, 8, 3, 3), _init("wf", 10, 8),
             _init("one", value=1.0), _init("zero", value=0.0), _init("four", value=4.0)]
    return _save(tmp_path, nodes, inits, [1, 3, 4, 4], [1, 10], "qnet")


def test_qonnx_widths_and_xnor_layers(tmp_path: Path) -> None:
    """Native kind xnor (4 of 7 products): as built on xnor, 4-bit layer kept; on mac converted."""
    path = str(_qonnx(tmp_path))
    native, mac = workloads(path, [("xnor", 1), ("mac", 8)])
    kinds = {layer.name: (layer.pe, layer.act_bits, layer.weight_bits) for layer in native.layers if layer.is_compute}
    assert kinds == {"stem": ("mac", 8, 8), "conv4": ("mac", 4, 4), "bin1": ("xnor", 1, 1),
                     "bin2": ("xnor", 1, 1), "bin3": ("xnor", 1, 1), "bin4": ("xnor", 1, 1), "fc": ("mac", 8, 8)}
    assert native.binary_op_counts()["bops"] == 4 * 16 * 72 * 8
    assert {layer.pe for layer in mac.layers if layer.is_compute} == {"mac"}
    assert all(layer.act_bits == 8 for layer in mac.layers)
    report = estimate(native, resolve_accelerator(pe="xnor"))
    assert {r.datapath for r in report.layers if r.op == "conv"} == {"mac (aux)", "xnor"}


def test_relus_read_only_by_binary_layers_go(tmp_path: Path) -> None:
    """Converted to xnor, relu1 (read by the depthwise conv only) goes, as convert drops it."""
    w, = workloads(str(_cnn(tmp_path)), [("xnor", 1)])
    assert "relu1" not in {layer.name for layer in w.layers}
    assert [layer.pe for layer in w.layers if layer.is_compute] == ["mac", "xnor", "mac"]


def test_dynamic_input_needs_input_shape(tmp_path: Path) -> None:
    path = _cnn(tmp_path, ["N", 3, "H", "W"])
    with pytest.raises(HwsimError, match=r"input 'x' has dynamic dims \(Nx3xHxW\); give them with --input-shape"):
        read_onnx(path)
    w = read_onnx(path, input_shape=(1, 3, 16, 16))
    assert w.input_shape == (1, 3, 16, 16) and w.layers[0].macs == 8 * 8 * 27 * 4


@pytest.mark.parametrize("node, message", [
    (helper.make_node("Erf", ["x"], ["y"], name="gelu_erf"), "cannot cost ONNX op Erf (node 'gelu_erf')"),
    (helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up"),
     "cannot cost ONNX op ConvTranspose (node 'up'); hwsim has no transposed-convolution mapping"),
    (helper.make_node("Fancy", ["x"], ["y"], name="mine", domain="com.me"),
     "cannot cost ONNX op com.me.Fancy (node 'mine')"),
])
def test_unsupported_ops_are_named(tmp_path: Path, node, message: str) -> None:
    path = _save(tmp_path, [node], [_init("w", 3, 3, 2, 2)], [1, 3, 4, 4], None)
    with pytest.raises(HwsimError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_onnx(path)


def test_shapes_that_inference_cannot_complete(tmp_path: Path) -> None:
    bad = _save(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
                [_init("w", 5, 2)], [1, 3, 8, 8], None, "mismatch")
    with pytest.raises(HwsimError, match="shape inference failed .*Incompatible dimensions"):
        read_onnx(bad)
    bad = _save(tmp_path, [helper.make_node("Conv", ["x", "w"], ["y"], name="c", group=1)],
                [_init("w", 4, 5, 3, 3)], [1, 3, 8, 8], None, "channels")
    with pytest.raises(HwsimError, match="Conv node 'c' has weights for 5 x 1 input channels, its input has 3"):
        read_onnx(bad)
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="r"),
             helper.make_node("Cast", ["r"], ["s"], name="cast", to=TensorProto.INT64),
             helper.make_node("Reshape", ["x", "s"], ["z"], name="reshape"),
             helper.make_node("MatMul", ["z", "w"], ["y"], name="mm")]
    unknown = _save(tmp_path, nodes, [_init("w", 1, 1)], [2], None, "unknown")
    with pytest.raises(HwsimError, match=r"shape of 'z' \(at MatMul node 'mm'\) is unknown"):
        read_onnx(unknown)


def test_cli(tmp_path: Path, cli) -> None:
    code, out, err = cli("estimate", str(_cnn(tmp_path)), "--pe", "adder")
    assert code == 0 and "dw" in out
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model\xff" * 10)
    for argv in ([str(junk)], [str(tmp_path / "missing.onnx")],
                 [str(_cnn(tmp_path, ["N", 3, 8, 8]))]):
        code, out, err = cli("estimate", *argv)
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    code, _, _ = cli("estimate", str(tmp_path / "cnn.onnx"), "--input-shape", "1,3,8,8")
    assert code == 0


def test_half_binary_layer_is_named_and_bit_width_must_be_constant(tmp_path: Path) -> None:
    nodes = [helper.make_node("BipolarQuant", ["w", "one"], ["wq"], name="bw", domain=QONNX),
             helper.make_node("MatMul", ["x", "wq"], ["y"], name="half")]
    w = read_onnx(_save(tmp_path, nodes, [_init("w", 6, 3), _init("one", value=1.0)], [1, 6], [1, 3], "half"))
    assert w.layers[0].pe == "mac" and w.warnings == (
        "layer 'half': only its weight passes through BipolarQuant; costed as mac at the network's width",)
    nodes = [helper.make_node("Relu", ["x"], ["bits"], name="r"),
             helper.make_node("Quant", ["x", "one", "one", "bits"], ["xq"], name="qx", domain=QONNX),
             helper.make_node("MatMul", ["xq", "w"], ["y"], name="mm")]
    with pytest.raises(HwsimError, match="Quant node 'qx' needs a constant bit width"):
        read_onnx(_save(tmp_path, nodes, [_init("w", 6, 3), _init("one", value=1.0)], [1, 6], [1, 3], "q"))

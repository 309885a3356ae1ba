"""Read an ONNX (or QONNX) model into a :class:`~hwsim.workload.Workload`, so that users of other
frameworks (FINN, Brevitas, any exporter) bring their networks unchanged.

Shapes come from the graph (``onnx.shape_inference``, with the data input fixed by
``input_shape`` when it has dynamic dims); weights and parameter counts from the initializers.
Each node becomes what :func:`hwsim.extract.extract` records for the PyTorch module it came from,
so a network exported with ``torch.onnx.export`` costs the same from either side:

* ``Conv`` (1-D and 2-D; group, dilation, strides, pads or ``auto_pad``) is a ``conv`` layer;
  ``Gemm`` and ``MatMul`` are ``linear`` layers over all rows of their output (a batched
  ``MatMul`` counts every row of every batch). A ``MatMul`` whose weight is a constant followed
  by an ``Add`` of an ``N``-element constant (``nn.Linear`` on a 3-D input) is one layer with a bias.
  A product of two activations (attention's ``Q K^T``) has no weights and stays ``mac`` when
  converted, as functional ``matmul`` does in :func:`hwsim.extract.retarget`.
* ``Add``/``Sub``/``Mul``/``Div``, ``BatchNormalization``, activations (``Relu``, ``Clip``,
  ``Sigmoid``, ``HardSigmoid``, ``HardSwish``, ``Tanh``, ``LeakyRelu``, ``PRelu``, ``Softmax``,
  ``Elu``, ``Gelu``, ``Sign``), pooling (``MaxPool``, ``AveragePool``, ``GlobalAveragePool``,
  ``GlobalMaxPool``, ``ReduceMean``) are vector work, one op per output element (per window
  element for pooling and per reduced element for ``ReduceMean``).
* Data movement (:data:`FREE_OPS`: ``Reshape``, ``Concat``, ``Slice``, ``Pad`` ...) is free, and
  so is every node whose inputs are all constants or shapes: shape arithmetic and weight
  preprocessing are done once, offline.
* QONNX ``Quant`` (bit width from its constant input) and ``BipolarQuant`` give the operand
  widths of the conv/gemm layers they feed: a layer whose input and weight both pass through
  ``BipolarQuant`` is an ``xnor`` layer, one behind ``Quant`` nodes of ``b`` bits gets
  ``act_bits``/``weight_bits`` = ``b``. The quantizers themselves are free (weights offline,
  activations in the producing layer's output stage).

Any other op is refused with one line naming every unsupported op type and a node of each; a
``ConvTranspose`` too (hwsim has no transposed-convolution mapping yet). Nothing is dropped.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import contract
from hwsim.errors import HwsimError
from hwsim.workload import NETWORK_INPUT, Layer, Workload

__all__ = ["FREE_OPS", "SUPPORTED_OPS", "OnnxGraph", "onnx_workloads", "read_onnx"]

#: Ops that only move or view data: free on the accelerator.
FREE_OPS = frozenset("""
    Reshape Flatten Transpose Squeeze Unsqueeze Slice Pad Identity Concat Split Dropout Cast
    Expand Tile DepthToSpace SpaceToDepth
""".split())
_QUANT_OPS = ("Quant", "BipolarQuant")
_GEMM_OPS = ("Conv", "Gemm", "MatMul")
_ELTWISE_OPS = {"Add": "add", "Sub": "add", "Mul": "mul", "Div": "mul"}
_ACT_OPS = frozenset("Relu Clip Sigmoid HardSigmoid HardSwish Tanh LeakyRelu PRelu Softmax Elu Gelu Sign".split())
_POOL_OPS = {"MaxPool": "maxpool", "AveragePool": "avgpool", "GlobalAveragePool": "avgpool",
             "GlobalMaxPool": "maxpool", "ReduceMean": "avgpool"}
#: Largest constant input (elements) evaluated while reading: shape arithmetic, not weights.
_FOLD_ELEMENTS = 4096
_KEEPS_QUANT = FREE_OPS | {"MaxPool", "GlobalMaxPool"}
#: Every op type the importer costs or passes as free.
SUPPORTED_OPS = frozenset((*FREE_OPS, *_QUANT_OPS, *_GEMM_OPS, *_ELTWISE_OPS, *_ACT_OPS, *_POOL_OPS,
                           "BatchNormalization", "Constant", "Shape", "Size"))
#: ``detail`` of a product without constant weights: what :func:`hwsim.extract.retarget` keeps mac.
_FUNCTIONAL = {"Conv": "conv2d", "Gemm": "matmul", "MatMul": "matmul"}

Shape = tuple[int, ...]


class _Fused(NamedTuple):
    """A MatMul layer (by its output tensor) with the bias of the Add that reads it."""

    name: str
    layer: Layer


def _chw(shape: Shape) -> tuple[int, int, int]:
    """Channels, height, width of an (N, C, ...) shape as :mod:`hwsim.extract` folds it."""
    dims = [*shape[1:], 1, 1, 1]
    return dims[0], dims[1], math.prod(shape[3:]) if len(shape) > 3 else dims[2]


def _pair(values: Sequence[int], fill: int) -> tuple[int, int]:
    """A 2-D (h, w) pair from the per-axis values of a 1-D or 2-D op."""
    return (int(values[0]), int(values[1]) if len(values) > 1 else fill)


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _label(node: Any) -> str:
    return node.name or (node.output[0] if node.output else node.op_type)


class OnnxGraph:
    """One ONNX model, read and shape-inferred once; :meth:`workload` gives it at any width.

    Raises :class:`HwsimError` with one line for a file that is not ONNX, a data input with
    dynamic dims and no ``input_shape``, shapes that inference cannot complete, and ops hwsim
    cannot cost.
    """

    def __init__(self, path: str | Path, *, input_shape: Shape | None = None) -> None:
        self.path = Path(path)
        model = _load(self.path)
        graph = model.graph
        inits = {t.name for t in graph.initializer}
        data = [i for i in graph.input if i.name not in inits]
        if not graph.node:
            raise HwsimError(f"{self.path}: the ONNX graph has no nodes; is it an ONNX model?")
        if len(data) != 1:
            raise HwsimError(f"{self.path}: hwsim costs graphs with one data input, this one has "
                             f"{len(data)} ({', '.join(i.name for i in data) or 'none'})")
        self.input_name = data[0].name
        self.input_shape = _fix_input(self.path, data[0], input_shape)
        self.values = _constants(model)
        self.layers: list[Layer] = []
        self.fixed: dict[str, tuple[int | None, int | None]] = {}  # quantized widths by layer
        self.warnings: list[str] = []
        self.relu_readers: dict[str, list[str | None]] = {}  # Relu layer -> readers' layers
        self.quant: dict[str, tuple[str, int]] = {}  # quantizer output -> (kind, bits)
        self.producer: dict[str, Any] = {}
        self.static = {t.name for t in graph.initializer} | set(self.values)
        costed = self._classify(graph)
        self.shapes = _infer(self.path, model, self.input_name, self.input_shape, self.values)
        self._build(graph, costed)

    # --- the walk over the nodes -----------------------------------------------------------
    def _classify(self, graph: Any) -> list[Any]:
        """The nodes that cost something; quantizers, constants and free nodes are noted on the
        way. Unsupported ops are refused here, before shape inference stumbles on them."""
        costed, unsupported = [], {}
        for node in graph.node:
            for out in node.output:
                self.producer[out] = node
            inputs = [i for i in node.input if i]
            op = node.op_type
            if op in _QUANT_OPS:
                self.quant[node.output[0]] = self._quant_info(node)
                if all(i in self.static for i in inputs):
                    self.static.update(node.output)
            elif op in ("Constant", "Shape", "Size") or all(i in self.static for i in inputs):
                self.static.update(node.output)
            elif op not in SUPPORTED_OPS:
                unsupported.setdefault(op if not node.domain else f"{node.domain}.{op}", _label(node))
            elif op not in FREE_OPS:
                costed.append(node)
        if unsupported:
            items = ", ".join(f"{op} (node {label!r})" for op, label in unsupported.items())
            extra = ("; hwsim has no transposed-convolution mapping yet (export it as Resize + Conv)"
                     if "ConvTranspose" in unsupported else "")
            raise HwsimError(f"{self.path}: hwsim cannot cost ONNX op {items}{extra}; replace "
                             f"{'it' if len(unsupported) == 1 else 'them'} before export "
                             f"(supported: {', '.join(sorted(SUPPORTED_OPS))})")
        return costed

    def _build(self, graph: Any, costed: list[Any]) -> None:
        """One layer per costed node (a MatMul's bias Add joins its MatMul)."""
        readers: dict[str, list[Any]] = {}
        for node in graph.node:
            for name in node.input:
                readers.setdefault(name, []).append(node)
        layer_of: dict[str, int] = {}  # output tensor -> index of the layer that makes it
        node_layer: dict[int, str] = {}  # id(node) -> its layer's name
        names: Counter[str] = Counter()
        for node in costed:
            inputs = [i for i in node.input if i]
            label = _label(node)
            names[label] += 1
            name = label if names[label] == 1 else f"{label}#{names[label]}"
            fused = self._bias_of_matmul(node, inputs, layer_of, readers)
            if fused is not None:
                index = layer_of[fused.name]
                self.layers[index] = fused.layer
                layer_of[node.output[0]] = index
                node_layer[id(node)] = fused.layer.name
                continue
            sources = tuple(dict.fromkeys(p for i in inputs for p in self._sources(i, node_layer)))
            self.layers.append(dataclasses.replace(self._layer(name, node, inputs), inputs=sources))
            layer_of[node.output[0]] = len(self.layers) - 1
            node_layer[id(node)] = name
        if not any(layer.is_compute for layer in self.layers):
            raise HwsimError(f"{self.path}: the graph has no Conv, Gemm or MatMul to map")
        outputs = {o.name for o in graph.output}
        for node in costed:
            if node.op_type == "Relu":
                out = node.output[0]
                self.relu_readers[node_layer[id(node)]] = (
                    [node_layer.get(id(r)) if r.op_type in _GEMM_OPS else None for r in readers.get(out, [])]
                    + ([None] if out in outputs else []))

    def _sources(self, tensor: str, node_layer: dict[int, str]) -> tuple[str, ...]:
        """The layers whose outputs reach ``tensor`` through free nodes (reshapes, concatenation,
        quantizers, padding): the data-flow edges of :attr:`Layer.inputs`. Constants have none."""
        found: dict[str, None] = {}
        stack, seen = [tensor], set()
        while stack:
            name = stack.pop()
            if name in seen or name in self.static:
                continue
            seen.add(name)
            if name == self.input_name:
                found[NETWORK_INPUT] = None
                continue
            node = self.producer.get(name)
            if node is None:
                continue
            if id(node) in node_layer:
                found[node_layer[id(node)]] = None
            else:
                stack.extend(reversed([i for i in node.input if i]))
        return tuple(found)

    def _quant_info(self, node: Any) -> tuple[str, int]:
        if node.op_type == "BipolarQuant":
            return "bipolar", 1
        if len(node.input) < 4 or node.input[3] not in self.values:
            raise HwsimError(f"{self.path}: Quant node {_label(node)!r} needs a constant bit width "
                             "(its fourth input); fold it into an initializer")
        bits = float(self.values[node.input[3]].reshape(-1)[0])
        if bits != int(bits) or bits < 1:
            raise HwsimError(f"{self.path}: Quant node {_label(node)!r} has bit width {bits:g}; "
                             "hwsim costs whole widths of at least 1 bit")
        return "int", int(bits)

    def _quant_of(self, name: str) -> tuple[str, int] | None:
        """The quantizer a tensor comes from, through data movement and max pooling (which keep
        quantized values quantized)."""
        while name not in self.quant:
            node = self.producer.get(name)
            if node is None or node.op_type not in _KEEPS_QUANT or not node.input:
                return None
            name = node.input[0]
        return self.quant[name]

    def shape(self, name: str, node: Any) -> Shape:
        if name not in self.shapes:
            raise HwsimError(f"{self.path}: the shape of {name!r} (at {node.op_type} node "
                             f"{_label(node)!r}) is unknown after shape inference; export with static "
                             "shapes or give --input-shape")
        return self.shapes[name]

    def _layer(self, name: str, node: Any, inputs: list[str]) -> Layer:
        op = node.op_type
        xs = self.shape(inputs[0], node)
        ys = self.shape(node.output[0], node)
        if op in _GEMM_OPS:
            return self._gemm(name, node, inputs, xs, ys)
        cin, h, w = _chw(xs)
        cout, oh, ow = _chw(ys)
        common = dict(name=name, batch=xs[0] if xs else 1, detail=op.lower())
        if op in _ELTWISE_OPS:  # as extract: the output's shape on both sides
            return Layer(op=_ELTWISE_OPS[op], in_ch=cout, in_h=oh, in_w=ow, out_ch=cout, out_h=oh,
                         out_w=ow, **{**common, "batch": ys[0] if ys else 1})
        params = 0
        if op == "BatchNormalization":
            params = sum(math.prod(self.shape(i, node)) for i in inputs[1:3])
        elif op == "PRelu":
            params = math.prod(self.shape(inputs[1], node)) if inputs[1] in self.static else 0
        kernel = (1, 1)
        if op in _POOL_OPS:
            kernel = (max(1, h // max(oh, 1)), max(1, w // max(ow, 1)))
            if op in ("MaxPool", "AveragePool"):
                kernel = _pair(_attrs(node)["kernel_shape"], 1)
            elif op == "ReduceMean":
                reduced = math.prod(xs) // max(1, math.prod(ys))
                if reduced != kernel[0] * kernel[1]:
                    kernel = (reduced, 1)
        kind = _POOL_OPS.get(op) or ("norm" if op == "BatchNormalization" else "act")
        return Layer(op=kind, in_ch=cin, in_h=h, in_w=w, out_ch=cout, out_h=oh, out_w=ow,
                     kernel=kernel, params=params, **common)

    def _gemm(self, name: str, node: Any, inputs: list[str], xs: Shape, ys: Shape) -> Layer:
        op = node.op_type
        x, weight = inputs[:2]
        if op == "MatMul" and x in self.static and weight not in self.static:  # W @ x
            x, weight = weight, x
        ws = self.shape(weight, node)
        has_weights = weight in self.static
        bias = len(inputs) > 2 and op != "MatMul"
        bias_elems = math.prod(self.shape(inputs[2], node)) if bias else 0
        detail = op if has_weights else _FUNCTIONAL[op]
        pe, widths = self._kind(name, x, weight)
        if op == "Conv":
            if len(xs) not in (3, 4):
                raise HwsimError(f"{self.path}: Conv node {_label(node)!r} is {len(xs) - 2}-D; hwsim "
                                 "maps 1-D and 2-D convolutions")
            attrs = _attrs(node)
            groups = int(attrs.get("group", 1))
            if ws[1] * groups != xs[1]:
                raise HwsimError(f"{self.path}: Conv node {_label(node)!r} has weights for {ws[1]} x "
                                 f"{groups} input channels, its input has {xs[1]}")
            kernel = _pair(ws[2:], 1)
            dilation = _pair(attrs.get("dilations", [1, 1]), 1)
            stride = _pair(attrs.get("strides", [1, 1]), 1)
            if dilation != (1, 1):
                detail += f" dilation {dilation[0]}x{dilation[1]}"
            cin, h, w = _chw(xs)
            cout, oh, ow = _chw(ys)
            layer = Layer(name=name, op="conv", in_ch=cin, in_h=h, in_w=w, out_ch=cout, out_h=oh,
                          out_w=ow, kernel=kernel, stride=stride,
                          padding=_pads(attrs, xs[2:], ws[2:], stride, dilation),
                          groups=groups, batch=xs[0], pe=pe, bias=bias, detail=detail, dilation=dilation)
        else:
            attrs = _attrs(node)
            if op == "Gemm":
                k = xs[0] if attrs.get("transA", 0) else xs[-1]
            else:
                k = xs[-1]
            n = ys[-1] if len(self.shape(inputs[1], node)) > 1 else 1  # a 1-D right side: one column
            rows = math.prod(ys) // n
            layer = Layer(name=name, op="linear", in_ch=k, in_h=1, in_w=1, out_ch=n, out_h=1, out_w=1,
                          batch=rows, pe=pe, bias=bias, detail=detail)
        if widths != (None, None):
            self.fixed[name] = widths
        params = (math.prod(ws) + bias_elems) if has_weights else 0
        return dataclasses.replace(layer, params=params)

    def _kind(self, name: str, x: str, weight: str) -> tuple[str, tuple[int | None, int | None]]:
        """PE kind and quantized (act, weight) widths of a product from its operands' quantizers."""
        qx, qw = self._quant_of(x), self._quant_of(weight)
        bipolar = [q is not None and q[0] == "bipolar" for q in (qx, qw)]
        if all(bipolar):
            return "xnor", (1, 1)
        if any(bipolar):
            which = "input" if bipolar[0] else "weight"
            self.warnings.append(f"layer {name!r}: only its {which} passes through BipolarQuant; "
                                 "costed as mac at the network's width")
            return "mac", (None, None)
        return "mac", (qx[1] if qx else None, qw[1] if qw else None)

    def _bias_of_matmul(self, node: Any, inputs: list[str], layer_of: dict[str, int],
                        readers: dict[str, list[Any]]) -> _Fused | None:
        """``MatMul`` (constant weight) + ``Add`` of an ``N``-element constant, as one biased layer."""
        if node.op_type != "Add" or len(inputs) != 2:
            return None
        for x, b in (inputs, inputs[::-1]):
            made = self.producer.get(x)
            if (made is None or made.op_type != "MatMul" or x not in layer_of or b not in self.static
                    or len(readers.get(x, [])) != 1):
                continue
            layer = self.layers[layer_of[x]]
            bs = self.shape(b, node)
            if layer.detail == "MatMul" and math.prod(bs) == layer.out_ch and (not bs or bs[-1] == layer.out_ch):
                return _Fused(x, dataclasses.replace(layer, bias=True, params=layer.params + layer.out_ch))
        return None

    # --- workloads ---------------------------------------------------------------------------
    @property
    def native_pe(self) -> str:
        """The PE kind most conv/gemm layers with weights use as the graph is quantized."""
        kinds = Counter(layer.pe for layer in self.layers if layer.is_compute and layer.params)
        return kinds.most_common(1)[0][0] if kinds else "mac"

    def workload(self, bits: int = 8) -> Workload:
        """The graph as quantized: layers without quantizers at ``bits`` (xnor layers 1 bit)."""
        layers = []
        for layer in self.layers:
            act, weight = self.fixed.get(layer.name, (None, None))
            if layer.is_compute:
                default = _operand_bits(layer.pe, bits)
                act, weight = act or default[0], weight or default[1]
            else:
                act = weight = bits
            layers.append(dataclasses.replace(layer, act_bits=act, weight_bits=weight))
        return Workload(name=self.path.stem, input_shape=self.input_shape, layers=tuple(layers),
                        warnings=tuple(self.warnings))

    def without_binary_relus(self, workload: Workload) -> Workload:
        """``workload`` without the ReLUs whose every reader is an xnor layer, as
        :func:`models.convert.convert` replaces them by Identity (the binary layer's sign is the
        activation). Readers are nodes, so a ReLU node is judged by itself (a torch ReLU module
        called twice is judged by both calls)."""
        kinds = {layer.name: layer.pe for layer in workload.layers}
        dropped = {name for name, readers in self.relu_readers.items()
                   if readers and all(r is not None and kinds.get(r) == "xnor" for r in readers)}
        return workload.without(dropped)


def _operand_bits(pe: str, bits: int) -> tuple[int, int]:
    try:
        return contract.operand_bits(pe, bits)
    except contract.ContractError as exc:
        raise HwsimError(str(exc)) from None


def _pads(attrs: dict[str, Any], size: Shape, kernel: Shape, stride: tuple[int, int],
          dilation: tuple[int, int]) -> tuple[int, int]:
    """Leading (h, w) padding from ``pads`` or ``auto_pad`` (SAME_UPPER pads the end more)."""
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begins = []
        for n, k, s, d in zip(size, kernel, stride, dilation):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            begins.append(total // 2 if auto == "SAME_UPPER" else total - total // 2)
        return _pair(begins, 0)
    if auto == "VALID":
        return 0, 0
    pads = attrs.get("pads", [0] * (2 * len(size)))
    return _pair(pads[: len(size)], 0)


def _load(path: Path) -> Any:
    import onnx

    if not path.is_file():
        raise HwsimError(f"ONNX file {str(path)!r} not found; check the path")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX file
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HwsimError(f"{path}: not an ONNX model ({text}); export one with torch.onnx.export") from None


def _fix_input(path: Path, value: Any, given: Shape | None) -> Shape:
    """The data input's shape: ``given`` (same rank), else the graph's own static dims."""
    dims = value.type.tensor_type.shape.dim
    own = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
    if given is not None:
        if len(given) != len(own):
            raise HwsimError(f"{path}: --input-shape {'x'.join(map(str, given))} has {len(given)} dims, "
                             f"input {value.name!r} has {len(own)}")
        return tuple(int(d) for d in given)
    if None in own or not own:
        shown = "x".join(str(d) if d else (dims[i].dim_param or "?") for i, d in enumerate(own))
        raise HwsimError(f"{path}: input {value.name!r} has dynamic dims ({shown or 'no shape'}); "
                         f"give them with --input-shape N,C,H,W")
    return tuple(own)


def _infer(path: Path, model: Any, input_name: str, input_shape: Shape,
           values: dict[str, Any]) -> dict[str, Shape]:
    """Static shapes of every tensor: constant ``values`` as initializers, QONNX quantizers read
    as shape-preserving."""
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    for value in graph.input:
        if value.name == input_name:
            shape = value.type.tensor_type.shape
            del shape.dim[:]
            for d in input_shape:
                shape.dim.add().dim_value = d
    known = {t.name for t in graph.initializer}
    folded = [n for n in graph.node if n.output and all(o in values for o in n.output)]
    for node in folded:
        graph.node.remove(node)
        graph.initializer.extend(numpy_helper.from_array(values[o], o) for o in node.output if o not in known)
    for node in graph.node:  # unknown to onnx's inference: an element-wise Identity
        if node.op_type in _QUANT_OPS:
            node.op_type, node.domain = "Identity", ""
            del node.input[1:]
            del node.attribute[:]
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:  # onnx raises InferenceError, ValidationError or RuntimeError
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HwsimError(f"{path}: shape inference failed ({text}); check --input-shape") from None
    shapes: dict[str, Shape] = {t.name: tuple(t.dims) for t in graph.initializer}
    for value in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        tensor = value.type.tensor_type
        if tensor.HasField("shape") and all(d.HasField("dim_value") for d in tensor.shape.dim):
            shapes[value.name] = tuple(d.dim_value for d in tensor.shape.dim)
    return shapes


def _constants(model: Any) -> dict[str, Any]:
    """numpy values of initializers, ``Constant`` nodes and the small constant subgraphs an
    exporter leaves unfolded (the pads of ``F.pad``: ``ConstantOfShape``, ``Concat``, ``Transpose``
    ...), which ONNX shape inference cannot see through; weights are not evaluated."""
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    opsets = {o.domain: o.version for o in model.opset_import}
    for node in model.graph.node:
        inputs = [i for i in node.input if i]
        if node.op_type == "Constant":
            attr = next((a for a in node.attribute if a.name == "value"), None)
            if attr is not None:
                values[node.output[0]] = numpy_helper.to_array(attr.t)
        elif (node.domain in ("", "ai.onnx") and all(i in values for i in inputs)
              and sum(values[i].size for i in inputs) <= _FOLD_ELEMENTS):
            try:
                outs = ReferenceEvaluator(node, opsets=opsets).run(None, {i: values[i] for i in inputs})
            except Exception:  # an op the reference cannot run: left to shape inference as it is
                continue
            values.update(zip(node.output, outs))
    return values


def read_onnx(path: str | Path, *, input_shape: Shape | None = None, bits: int = 8) -> Workload:
    """The workload of the ONNX model at ``path`` as quantized, other layers at ``bits``."""
    return OnnxGraph(path, input_shape=input_shape).workload(bits)


def onnx_workloads(path: str | Path, targets: Sequence[tuple[str, int]], *, convert_all: bool = False,
                   input_shape: Shape | None = None) -> list[Workload]:
    """The workload of an ONNX model on each ``(pe, bits)`` of ``targets``, as
    :func:`hwsim.api.workloads` gives a PyTorch network's: as quantized on its native kind
    (:attr:`OnnxGraph.native_pe`), converted by :func:`hwsim.extract.retarget` to any other (the
    first and last conv/gemm stay mac unless ``convert_all``; for xnor the ReLUs that only binary
    layers read are dropped, as :func:`models.convert.convert` does)."""
    from hwsim.extract import retarget

    graph = OnnxGraph(path, input_shape=input_shape)
    made = []
    for pe, bits in targets:
        widths = contract.layer_bits(pe, bits)
        if pe == graph.native_pe:
            made.append(graph.workload(widths))
            continue
        workload = retarget(graph.workload(widths), pe, bits, keep_first_last=not convert_all)
        made.append(graph.without_binary_relus(workload) if pe == "xnor" else workload)
    return made

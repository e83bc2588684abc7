"""Small tools for editing an ONNX graph in place, shared by the rewrites.

An ONNX graph is a list of nodes in topological order, connected by tensor names; constants are either
initializers or `Constant` nodes. These helpers read constants whichever way they are stored, find a
tensor's producer and consumers, make fresh names, and insert nodes without breaking the order.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


class Graph:
    """A view of `model.graph` with name lookups. Edits go through its methods so the lookups stay right."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.g = model.graph
        self._names = {n for node in self.g.node for n in (*node.input, *node.output)}
        self._names |= {i.name for i in self.g.initializer} | {i.name for i in self.g.input}
        self._counter = 0

    # ---- reading

    @property
    def initializers(self) -> dict[str, onnx.TensorProto]:
        return {i.name: i for i in self.g.initializer}

    @property
    def input_names(self) -> list[str]:
        inits = self.initializers
        return [i.name for i in self.g.input if i.name not in inits]

    def producer(self, name: str) -> onnx.NodeProto | None:
        for node in self.g.node:
            if name in node.output:
                return node
        return None

    def consumers(self, name: str) -> list[onnx.NodeProto]:
        return [node for node in self.g.node if name in node.input]

    def is_graph_output(self, name: str) -> bool:
        return any(o.name == name for o in self.g.output)

    def constant(self, name: str) -> np.ndarray | None:
        """The value of a constant tensor (initializer or Constant node), else None."""
        init = self.initializers.get(name)
        if init is not None:
            return numpy_helper.to_array(init)
        node = self.producer(name)
        if node is None or node.op_type != "Constant":
            return None
        for a in node.attribute:
            if a.name == "value":
                return numpy_helper.to_array(a.t)
            if a.name in ("value_float", "value_int"):
                return np.asarray(helper.get_attribute_value(a))
            if a.name in ("value_floats", "value_ints"):
                return np.asarray(helper.get_attribute_value(a))
        return None

    def elem_type(self, name: str) -> int | None:
        """The declared element type of a tensor, where the graph records one."""
        for vi in (*self.g.input, *self.g.output, *self.g.value_info):
            if vi.name == name:
                return vi.type.tensor_type.elem_type
        init = self.initializers.get(name)
        return init.data_type if init is not None else None

    def shapes(self) -> dict[str, tuple[int | None, ...]]:
        """Every tensor's shape as ONNX shape inference sees it (unknown dimensions None; tensors it cannot
        type are missing). Initializers and Constant nodes are included."""
        try:
            inferred = onnx.shape_inference.infer_shapes(self.model, strict_mode=False, data_prop=True)
        except Exception:  # inference is a hint: callers treat a missing shape as unknown
            inferred = self.model
        out = {}
        for vi in (*inferred.graph.input, *inferred.graph.output, *inferred.graph.value_info):
            t = vi.type.tensor_type
            if t.HasField("shape"):
                out[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
        for init in self.g.initializer:
            out[init.name] = tuple(init.dims)
        return out

    # ---- writing

    def fresh(self, base: str) -> str:
        """A tensor or node name not used anywhere in the graph."""
        while True:
            self._counter += 1
            name = f"{base}__zk{self._counter}"
            if name not in self._names:
                self._names.add(name)
                return name

    def add_constant(self, value: np.ndarray, base: str) -> str:
        name = self.fresh(base)
        self.g.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def new_node(self, op: str, inputs: list[str], output: str | None = None, label: str = "zk",
                 **attrs) -> onnx.NodeProto:
        """A node with a fresh name (and a fresh output name unless `output` is given); not yet in the graph."""
        return helper.make_node(op, inputs, [output or self.fresh(f"{label}_{op}")], name=self.fresh(f"{label}_{op}"),
                                **attrs)

    def set_nodes(self, nodes: list[onnx.NodeProto]) -> None:
        """Replace the whole node list (the caller keeps it topologically ordered)."""
        del self.g.node[:]
        self.g.node.extend(nodes)
        for n in nodes:
            self._names.update(n.input)
            self._names.update(n.output)

    def fold_constants(self, skip: frozenset[str] = frozenset()) -> int:
        """Replace every standard-domain node whose inputs are all constants (and that has no subgraph) by
        initializers holding its outputs, evaluated with onnx's reference evaluator; op types in `skip` are
        left alone. Exporters write such chains (PyTorch's `ConstantOfShape -> Cast` zero points, a bias
        `Reshape`d at run time) where a rewrite needs the value. Returns how many nodes were folded."""
        from onnx.reference import ReferenceEvaluator

        folded = 0
        for node in list(self.g.node):
            if (node.op_type == "Constant" or node.op_type in skip or node.domain not in ("", "ai.onnx")
                    or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)):
                continue
            values = [self.constant(i) if i else None for i in node.input]
            if any(v is None for v, i in zip(values, node.input, strict=True) if i):
                continue
            feeds = {i: v for i, v in zip(node.input, values, strict=True) if i}
            model = helper.make_model(helper.make_graph(
                [node], "fold", [helper.make_tensor_value_info(i, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
                                 for i, v in feeds.items()],
                [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output]),
                opset_imports=[helper.make_opsetid("", opset(self.model))])
            outputs = ReferenceEvaluator(model).run(None, feeds)
            keep = [n for n in self.g.node if tuple(n.output) != tuple(node.output)]
            self.set_nodes(keep)
            for name, value in zip(node.output, outputs, strict=True):
                self.g.initializer.append(numpy_helper.from_array(np.asarray(value), name))
            folded += 1
        return folded

    def set_constant(self, name: str, value: np.ndarray) -> None:
        """Replace a constant's value in place (initializer or Constant node)."""
        for i, init in enumerate(self.g.initializer):
            if init.name == name:
                self.g.initializer[i].CopyFrom(numpy_helper.from_array(np.asarray(value), name))
                return
        node = self.producer(name)
        if node is None or node.op_type != "Constant":
            raise ValueError(f"{name} is not a constant")
        del node.attribute[:]
        node.attribute.append(helper.make_attribute("value", numpy_helper.from_array(np.asarray(value), name)))

    def replace_node(self, old: onnx.NodeProto, new_nodes: list[onnx.NodeProto]) -> None:
        """Put `new_nodes` where `old` was (keeps topological order when they only read what `old` read)."""
        nodes = list(self.g.node)
        i = self._index(nodes, old)
        nodes[i:i + 1] = new_nodes
        del self.g.node[:]
        self.g.node.extend(nodes)
        for n in new_nodes:
            self._names.update(n.input)
            self._names.update(n.output)

    def insert_before(self, anchor: onnx.NodeProto | None, new_nodes: list[onnx.NodeProto]) -> None:
        """Insert nodes before `anchor` (None: at the start of the graph)."""
        nodes = list(self.g.node)
        i = 0 if anchor is None else self._index(nodes, anchor)
        nodes[i:i] = new_nodes
        del self.g.node[:]
        self.g.node.extend(nodes)
        for n in new_nodes:
            self._names.update(n.input)
            self._names.update(n.output)

    @staticmethod
    def _index(nodes: list[onnx.NodeProto], node: onnx.NodeProto) -> int:
        # protobuf hands out a new wrapper per access, so nodes are found by what they produce (unique in ONNX)
        key = tuple(node.output)
        return next(j for j, n in enumerate(nodes) if tuple(n.output) == key)

    def rename_input_uses(self, old: str, new: str, skip: onnx.NodeProto | None = None) -> None:
        """Every node (but `skip`) that reads `old` reads `new` instead."""
        skip_key = tuple(skip.output) if skip is not None else None
        for node in self.g.node:
            if tuple(node.output) == skip_key:
                continue
            for k, name in enumerate(node.input):
                if name == old:
                    node.input[k] = new

    def remove_unused(self) -> None:
        """Drop nodes whose outputs nothing reads, then initializers nothing reads."""
        outputs = {o.name for o in self.g.output}
        changed = True
        while changed:
            used = {n for node in self.g.node for n in node.input} | outputs
            keep = [node for node in self.g.node if any(o in used for o in node.output)]
            changed = len(keep) != len(self.g.node)
            if changed:
                del self.g.node[:]
                self.g.node.extend(keep)
        used = {n for node in self.g.node for n in node.input} | outputs
        keep_init = [i for i in self.g.initializer if i.name in used]
        del self.g.initializer[:]
        self.g.initializer.extend(keep_init)


def opset(model: onnx.ModelProto) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)

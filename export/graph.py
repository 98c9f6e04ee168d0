"""What an ONNX style network costs, layer by layer, from its graph alone (onnx, no torch, no runtime).

Shape inference at a fixed input size gives every convolution's output; with the weights that gives MACs and the
bytes a layer must move. INT8 fallback search (precision.py) and the Jetson estimator (benchmarks) read these.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ConvLayer:
    name: str
    macs: int
    input_elems: int
    output_elems: int
    weight_elems: int
    depthwise: bool  # one input channel per group: no reduction for tensor cores to work on
    output_pixels: int = 0  # H×W of its output: the residual trunk's convolutions have the fewest


def conv_layers(path: str | Path, h: int = 256, w: int = 256) -> list[ConvLayer]:
    """Every convolution in graph order (encoder first) for a 1×3×h×w input."""
    import onnx

    model = onnx.load(str(path))
    for dim, value in zip(model.graph.input[0].type.tensor_type.shape.dim, (1, 3, h, w)):
        dim.dim_value = value  # replaces the symbolic H and W
    model = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*model.graph.input, *model.graph.value_info, *model.graph.output]}
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    layers = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        wshape, out = weights[node.input[1]], int(np.prod(shapes[node.output[0]]))
        layers.append(ConvLayer(node.name, out * int(np.prod(wshape[1:])), int(np.prod(shapes[node.input[0]])), out,
                                int(np.prod(wshape)), wshape[1] == 1, int(np.prod(shapes[node.output[0]][2:]))))
    return layers

"""Graph rewrites that make ezkl compute what the model computes.

Each module fixes one thing ezkl's ONNX front end (tract, then ezkl's lowering to circuit ops) gets wrong
or cannot read, by rewriting the graph into operators it lowers correctly. `REWRITES` is the order
`pipeline.prepare` applies them in:

    onnxml      skl2onnx / onnxmltools operators (`ai.onnx.ml`: Scaler, LinearClassifier, TreeEnsemble*,
                ZipMap, ...), which ezkl cannot read at all -> standard operators, through the same tree and
                linear builders as `zkinfer export`; any other `ai.onnx.ml` operator is refused by name.
                First, so that the rewrites after it see standard operators only.
    quantized   QuantizeLinear/DequantizeLinear, QOperator and dynamic quantization -> the quantized model's
                integer arithmetic in float operators ezkl lowers correctly (what is exact: its docstring)
    equal       Equal -> comparisons (ezkl gives Equal's 0/1 output its input's scale)
    prescale    raw-amount inputs fed as x / 2**m per feature, the factor absorbed by the first op

`CALIBRATED_REWRITES` run after calibration, on each attempt's chosen scales, just before compilation:

    grid        thresholds compared with input features moved onto the input's fixed-point grid, so each
                decision is exactly the model's on the quantized input

`shapes` (concrete shapes for every input and output) and `graph` (editing helpers) serve them all.
"""

from .base import Rewrite, RewriteContext
from .equal import EQUAL_AS_COMPARISONS
from .grid import THRESHOLDS_ON_GRID
from .onnxml import ONNXML_TO_STANDARD
from .prescale import PRESCALE_RAW_AMOUNTS
from .quantized import QUANTIZED_ARITHMETIC

REWRITES: tuple[Rewrite, ...] = (ONNXML_TO_STANDARD, QUANTIZED_ARITHMETIC, EQUAL_AS_COMPARISONS, PRESCALE_RAW_AMOUNTS)
CALIBRATED_REWRITES: tuple[Rewrite, ...] = (THRESHOLDS_ON_GRID,)

__all__ = ["CALIBRATED_REWRITES", "REWRITES", "Rewrite", "RewriteContext"]

"""Graph rewrites that make ezkl compute what the model computes.

Each module fixes one thing ezkl's ONNX front end (tract, then ezkl's lowering to circuit ops) gets wrong
or cannot read, by rewriting the graph into operators it lowers correctly. `REWRITES` is the order
`pipeline.prepare` applies them in:

    quantized   QuantizeLinear/DequantizeLinear, QOperator and dynamic quantization -> the quantized model's
                integer arithmetic in float operators ezkl lowers correctly (what is exact: its docstring)
    equal       Equal -> comparisons (ezkl gives Equal's 0/1 output its input's scale)
    prescale    raw-amount inputs fed as x / 2**m per feature, the factor absorbed by the first op

`shapes` (concrete shapes for every input and output) and `graph` (editing helpers) serve them all.
"""

from .base import Rewrite, RewriteContext
from .equal import EQUAL_AS_COMPARISONS
from .prescale import PRESCALE_RAW_AMOUNTS
from .quantized import QUANTIZED_ARITHMETIC

REWRITES: tuple[Rewrite, ...] = (QUANTIZED_ARITHMETIC, EQUAL_AS_COMPARISONS, PRESCALE_RAW_AMOUNTS)

__all__ = ["REWRITES", "Rewrite", "RewriteContext"]

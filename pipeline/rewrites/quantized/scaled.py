"""The numbers the lowering works with: quantized types' integer ranges, tensors held as (integers, scale),
and float scales as an integer multiplier and a shift ezkl can carry out exactly."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

# ezkl decomposes comparisons, and so the remainder check of its rescaling division, into 2 legs of base
# 2^14 (its defaults): dividing by 2^k needs 2^k < 2^28.
MAX_SHIFT = 27
# Constants reach ezkl as float32: integer multipliers stay exact below 2^24.
MANTISSA_BITS = 24
# Below this a multiplier's 24-bit mantissa needs a shift beyond MAX_SHIFT: 2^(MANTISSA_BITS - 1 - MAX_SHIFT).
SMALL_MULTIPLIER = 2.0 ** (MANTISSA_BITS - 1 - MAX_SHIFT)

# Integer ranges of the quantized types, by numpy dtype (zero points) and by ONNX element type (tensors).
RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255), np.dtype(np.int16): (-32768, 32767),
          np.dtype(np.uint16): (0, 65535), np.dtype(np.int32): (-(2**31), 2**31 - 1)}
ELEM_RANGES = {TensorProto.INT8: (-128, 127), TensorProto.UINT8: (0, 255), TensorProto.INT16: (-32768, 32767),
               TensorProto.UINT16: (0, 65535), TensorProto.INT32: (-(2**31), 2**31 - 1)}


@dataclass
class Scaled:
    """A tensor of the rewritten graph whose real value is `value * scale` (the scale broadcasts against it):
    a dequantized tensor, or an accumulator, not yet multiplied out."""

    value: str
    scale: np.ndarray  # float32, broadcastable to the value
    domain: tuple[int, int] | None = None  # the value's integers lie in [lo, hi] (a dequantized tensor)

    @property
    def per_tensor(self) -> bool:
        return self.scale.size == 1


def multiplier(c: np.ndarray) -> tuple[int, np.ndarray]:
    """c as m * 2^-k: m integer-valued (|m| < 2^24, exact in float32), 0 <= k <= MAX_SHIFT, k no larger than
    c needs (an integer c gives k = 0)."""
    c = np.asarray(c, dtype=np.float64)
    peak = float(np.abs(c).max()) if c.size else 0.0
    if peak == 0.0:
        return 0, np.zeros_like(c)
    k = int(np.clip(MANTISSA_BITS - 1 - math.floor(math.log2(peak)), 0, MAX_SHIFT))
    while k > 0 and np.array_equal(c * 2.0 ** (k - 1), np.round(c * 2.0 ** (k - 1))):
        k -= 1
    return k, np.round(c * 2.0**k)

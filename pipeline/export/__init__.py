"""Export: a model as an ONNX graph, and that graph's signature as the circuit compiler will see it.

    signature   read an ONNX file's inputs, outputs, operators and symbolic dimensions (`inspect`)
    torch       torch modules to ONNX (the zoo's models), deterministic torch for reproducible training

Models reach zkinfer as ONNX files: from torch (the zoo's models, `pipeline.zoo`), or from fitted
scikit-learn / XGBoost / LightGBM models (`zkinfer export`).
"""

from .signature import OnnxSignature, TensorSpec, inspect

__all__ = ["OnnxSignature", "TensorSpec", "inspect"]

"""Export: a model as an ONNX graph, and that graph's signature as the circuit compiler will see it.

    signature   read an ONNX file's inputs, outputs, operators and symbolic dimensions (`inspect`)
    torch       torch modules to ONNX (the zoo's models), deterministic torch for reproducible training
    classic     `export_model`: fitted scikit-learn / XGBoost / LightGBM models (or their files) -> ONNX that
                ezkl computes exactly (`zkinfer export`), through
    sklearn, xgboost, lightgbm   one converter per library, into
    trees, builder               the shared tree-ensemble and linear-model builders (also used by the
                                 `ai.onnx.ml` rewrite, `pipeline.rewrites.onnxml`)

Models reach zkinfer as ONNX files: from torch (the zoo's models, `pipeline.zoo`), or from fitted
scikit-learn / XGBoost / LightGBM models (`zkinfer export`). The classic-ML libraries are imported only
when a model is exported (the `classic` extra); provers never need them.
"""

from .signature import OnnxSignature, TensorSpec, inspect


def export_model(model_or_path, out_path, **kwargs):
    """`pipeline.export.classic.export_model` (imported on first use: it needs numpy and onnxruntime only,
    and the model's own library)."""
    from .classic import export_model as _export

    return _export(model_or_path, out_path, **kwargs)


__all__ = ["OnnxSignature", "TensorSpec", "export_model", "inspect"]

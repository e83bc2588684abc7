"""Torch models as ONNX graphs ezkl loads, and deterministic torch for reproducible training.

The zoo's torch models (`models/*/model.py`) train and export through these; so can a user's own torch
module. Torch is imported inside the functions only: nothing that proves or verifies needs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

# Inside the opsets tract (in ezkl) is tested with, 9 to 18; the tree converter writes it too, with IR 8.
ONNX_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"


def export_torch_onnx(
    module,
    path: str | os.PathLike,
    sample_shape: tuple[int, ...],
    batch_size: int = 1,
    split_inputs: bool = False,
) -> None:
    """Export a float32 torch module taking [batch, *sample_shape] to ONNX with a static batch dimension.

    With `split_inputs` the graph takes `batch_size` inputs of shape [1, *sample_shape] (``input_0``, ...) and
    concatenates them first, so that ezkl hashes or commits each sample separately. Uses the TorchScript
    exporter (``dynamo=False``) at opset `ONNX_OPSET`: its graphs are plain MatMul/Gemm/Conv/activation ops
    that tract and ezkl load, and its output is byte-identical for identical weights.
    """
    import torch

    module = module.eval()
    if split_inputs:
        wrapped = _concat_inputs(module)
        args = tuple(torch.zeros(1, *sample_shape) for _ in range(batch_size))
        input_names = [f"{INPUT_NAME}_{i}" for i in range(batch_size)]
    else:
        wrapped = module
        args = (torch.zeros(batch_size, *sample_shape),)
        input_names = [INPUT_NAME]
    with torch.no_grad():
        torch.onnx.export(
            wrapped,
            args,
            str(path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=input_names,
            output_names=[OUTPUT_NAME],
            do_constant_folding=True,
        )


def _concat_inputs(module):
    """A torch module concatenating its inputs along the batch axis before calling `module`."""
    import torch

    class ConcatInputs(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *samples):
            return self.inner(torch.cat(samples, dim=0))

    return ConcatInputs(module)


@contextmanager
def deterministic_torch(seed: int | None = None) -> Iterator[None]:
    """One CPU thread, and a seeded RNG when `seed` is given, for the duration; restored after.

    One thread because float sums reduce in a thread-count-dependent order (measured: digits_cnn's trained
    weights differ between 1 and 2 threads). The same seed on a laptop and a server must give the same
    weights and outputs, hence the same ONNX and calibration bytes and build hashes.
    """
    import torch

    threads = torch.get_num_threads()
    rng_state = torch.get_rng_state()
    torch.set_num_threads(1)
    if seed is not None:
        torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_rng_state(rng_state)


def torch_predict(net, X: np.ndarray) -> np.ndarray:
    """A torch module's float32 outputs on `X`, deterministically (see `deterministic_torch`)."""
    import torch

    with deterministic_torch(), torch.no_grad():
        return net(torch.from_numpy(np.asarray(X, dtype=np.float32))).numpy()

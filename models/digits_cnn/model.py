"""digits_cnn: a small CNN classifying scikit-learn's bundled 8x8 handwritten digits (the benchmark model).

Data: `sklearn.datasets.load_digits` (1,797 images shipped inside scikit-learn, nothing downloaded),
shuffled with the seed. Pixels are integers 0..16; circuit inputs are pixel / 16, i.e. multiples of 1/16
in [0, 1], exactly representable at any input scale >= 4.

Network: Conv(1->8, 3x3) + ReLU -> [8, 6, 6], AvgPool 2x2 -> [8, 3, 3], Linear(72 -> 10) logits.
Average pooling rather than max pooling: in a circuit it is a sum and one rescale, where max pooling
needs comparisons per window.
"""

from __future__ import annotations

import numpy as np

from pipeline.errors import UsageError
from pipeline.export.torch import deterministic_torch, export_torch_onnx, torch_predict
from pipeline.zoo import ModelSpec

N_IMAGES = 1797  # load_digits' size
CHANNELS = 8

SPEC = ModelSpec(
    name="digits_cnn",
    description=f"CNN Conv(1->{CHANNELS},3x3)+ReLU+AvgPool+Linear->10 on scikit-learn's 8x8 digits",
    task="classification",
    feature_names=tuple(f"pixel_{row}_{col}" for row in range(8) for col in range(8)),
    sample_shape=(1, 8, 8),
    output_names=tuple(f"logit_{digit}" for digit in range(10)),
    output_units="logits (unnormalized log-probabilities), predicted digit = argmax",
    input_range=(0.0, 1.0),
    input_encoding="8x8 grayscale image, row-major, pixel intensity 0..16 divided by 16",
    # The predicted digit must agree; logits typically differ by several units between the top two
    # classes, and 0.05 keeps the proven logits (and any softmax built on them) within a fraction of that.
    tolerance={"max_abs_error": 0.05, "label_agreement": 0.99},
    n_train=1400,
    n_test=N_IMAGES - 1400,
)


def generate_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n images of load_digits in a seeded random order: [n, 1, 8, 8] in [0, 1], labels 0..9."""
    from sklearn.datasets import load_digits

    if n > N_IMAGES:
        raise UsageError(f"digits_cnn: load_digits has {N_IMAGES} images, asked for {n}")
    digits = load_digits()
    order = np.random.default_rng(seed).permutation(N_IMAGES)[:n]
    X = (digits.images[order] / 16.0).astype(np.float32).reshape(n, 1, 8, 8)
    return X, digits.target[order].astype(np.int64)


def build_network():
    import torch

    return torch.nn.Sequential(
        torch.nn.Conv2d(1, CHANNELS, kernel_size=3),
        torch.nn.ReLU(),
        torch.nn.AvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(CHANNELS * 3 * 3, 10),
    )


def train(X: np.ndarray, y: np.ndarray, seed: int, steps: int = 500):
    """Full-batch Adam on the cross-entropy."""
    import torch

    with deterministic_torch(seed):
        net = build_network()
        Xt = torch.from_numpy(np.asarray(X, dtype=np.float32))
        yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
        opt = torch.optim.Adam(net.parameters(), lr=0.02, weight_decay=1e-4)
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(Xt), yt).backward()
            opt.step()
    return net.eval()


def predict(net, X: np.ndarray) -> np.ndarray:
    return torch_predict(net, X)


def evaluate(net, X: np.ndarray, y: np.ndarray) -> dict:
    logits = predict(net, X)
    return {"accuracy": float(np.mean(logits.argmax(axis=1) == y)), "n": int(len(y))}


def export_onnx(net, path, batch_size: int = 1, split_inputs: bool = False) -> None:
    export_torch_onnx(net, path, SPEC.sample_shape, batch_size=batch_size, split_inputs=split_inputs)

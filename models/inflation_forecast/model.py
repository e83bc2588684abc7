"""inflation_forecast: an Elman RNN forecasting next quarter's inflation from the last 12 monthly readings.

Synthetic data: year-over-year CPI inflation in percent, simulated month by month as an AR(1) around the
mean of a hidden regime (anchored ~2%, elevated ~5.5%, deflationary ~-0.5%) that switches at random, with
noise, published rounded to 0.1 pp like official CPI figures. A sample is a window of 12 consecutive
readings; its target is the average of the next 3 months (the next quarter), in percent.

The network is a genuine recurrent model with weights shared across time: one tanh cell applied 12 times,
unrolled in `forward`, so the exported graph is plain MatMul/Add/Tanh that ezkl compiles (ONNX's RNN op
is not supported by ezkl). The forecast is the last reading plus a learned correction from the final
hidden state: persistence is a strong baseline for inflation, and the correction only models the change.
"""

from __future__ import annotations

import numpy as np

from pipeline.export.torch import deterministic_torch, export_torch_onnx, torch_predict
from pipeline.zoo import ModelSpec

WINDOW = 12
HORIZON = 3
HIDDEN = 8
# Regimes: (mean %, AR(1) coefficient, monthly noise sd); switch probability per month.
REGIMES = ((2.0, 0.9, 0.12), (5.5, 0.93, 0.25), (-0.5, 0.88, 0.15))
SWITCH_PROBABILITY = 0.04
INPUT_RANGE = (-5.0, 20.0)
# Fixed input normalization inside the graph, powers of two so that it is exact in fixed point.
CENTER = 2.0
SCALE = 0.25

SPEC = ModelSpec(
    name="inflation_forecast",
    description=f"Elman RNN (hidden {HIDDEN}) over {WINDOW} monthly inflation readings: next-quarter average",
    task="regression",
    feature_names=tuple(f"inflation_m{lag - WINDOW}" for lag in range(1, WINDOW + 1)),
    sample_shape=(WINDOW,),
    output_names=("next_quarter_inflation",),
    output_units="percent (year-over-year CPI inflation, average of the next 3 months)",
    input_range=INPUT_RANGE,
    input_encoding=(
        "12 monthly year-over-year inflation readings in percent, oldest first, rounded to 0.1, "
        "within [-5, 20]"
    ),
    # Inflation-linked payoffs settle on CPI published to 0.1 pp; one basis point is far below that and
    # below the model's own forecast error, so the proof changes nothing a contract would act on.
    tolerance={"max_abs_error": 0.01},
    n_train=6000,
    n_test=2000,
)


def simulate(n: int, seed: int, months: int, burn_in: int = 24) -> np.ndarray:
    """n independent inflation paths, [n, months] in percent (unrounded), after a burn-in."""
    rng = np.random.default_rng(seed)
    means, phis, sds = (np.array(column) for column in zip(*REGIMES, strict=True))
    regime = rng.integers(0, len(REGIMES), n)
    x = means[regime] + rng.normal(0.0, 0.5, n)
    path = np.empty((n, burn_in + months))
    for t in range(burn_in + months):
        switch = rng.random(n) < SWITCH_PROBABILITY
        regime = np.where(switch, (regime + rng.integers(1, len(REGIMES), n)) % len(REGIMES), regime)
        mu = means[regime]
        x = mu + phis[regime] * (x - mu) + rng.normal(0.0, 1.0, n) * sds[regime]
        path[:, t] = x
    return path[:, burn_in:]


def generate_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of 12 published readings (rounded to 0.1 pp) and next-quarter average targets."""
    path = np.clip(np.round(simulate(n, seed, WINDOW + HORIZON), 1), *INPUT_RANGE)
    X = path[:, :WINDOW].astype(np.float32)
    y = path[:, WINDOW:].mean(axis=1).astype(np.float32)
    return X, y


def build_network():
    import torch

    class ElmanForecaster(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.input_to_hidden = torch.nn.Linear(1, HIDDEN)
            self.hidden_to_hidden = torch.nn.Linear(HIDDEN, HIDDEN, bias=False)
            self.head = torch.nn.Linear(HIDDEN, 1)

        def forward(self, x):  # x: [batch, WINDOW] percent
            z = (x - CENTER) * SCALE
            h = torch.zeros(x.shape[0], HIDDEN)
            for t in range(WINDOW):
                h = torch.tanh(self.input_to_hidden(z[:, t : t + 1]) + self.hidden_to_hidden(h))
            return x[:, WINDOW - 1 : WINDOW] + self.head(h)

    return ElmanForecaster()


def train(X: np.ndarray, y: np.ndarray, seed: int, steps: int = 600):
    """Full-batch Adam on the squared error, with a decaying learning rate."""
    import torch

    with deterministic_torch(seed):
        net = build_network()
        Xt = torch.from_numpy(np.asarray(X, dtype=np.float32))
        yt = torch.from_numpy(np.asarray(y, dtype=np.float32)).reshape(-1, 1)
        opt = torch.optim.Adam(net.parameters(), lr=0.02)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(Xt), yt).backward()
            opt.step()
            schedule.step()
    return net.eval()


def predict(net, X: np.ndarray) -> np.ndarray:
    return torch_predict(net, X)


def evaluate(net, X: np.ndarray, y: np.ndarray) -> dict:
    """Held-out RMSE/MAE in percentage points, next to the persistence forecast (last reading)."""
    forecast = predict(net, X)[:, 0]
    persistence = np.asarray(X)[:, -1]
    return {
        "rmse": float(np.sqrt(np.mean((forecast - y) ** 2))),
        "mae": float(np.mean(np.abs(forecast - y))),
        "persistence_rmse": float(np.sqrt(np.mean((persistence - y) ** 2))),
        "n": int(len(y)),
    }


def export_onnx(net, path, batch_size: int = 1, split_inputs: bool = False) -> None:
    export_torch_onnx(net, path, SPEC.sample_shape, batch_size=batch_size, split_inputs=split_inputs)

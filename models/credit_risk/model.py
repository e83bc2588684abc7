"""credit_risk: an MLP giving a borrower's probability of default from 8 standardized features.

The borrowers are synthetic: raw features in their natural units (dollars, ratios, counts, years) drawn
from correlated distributions, and a default drawn from a logistic model with a few non-linear terms (a
convex utilization effect, a debt-to-income x utilization interaction, a jump above the 43% debt-to-income
limit of qualified mortgages), so that the models have something to learn beyond a linear score.

Circuit inputs are the *encoded* features (`encode`): each raw feature is log-transformed where it is
log-normal, standardized with fixed published constants (`FEATURES`), rounded to a multiple of 1/32 and
clipped to [-4, 4]. The encoding lives outside the ONNX graph on purpose: folding the standardization into
the first layer would give weights like 1/60000 that vanish in fixed point, and inputs on a 1/32 grid in a
small range are exactly representable in the circuit (any input scale >= 5), so contracts see exactly the
values the circuit used. `credit_gbt` uses the same borrowers.
"""

from __future__ import annotations

import numpy as np

from pipeline.export.torch import deterministic_torch, export_torch_onnx, torch_predict
from pipeline.zoo import ModelSpec

# name, transform applied to the raw value, center, scale: encoded = round32(clip((t(raw) - center) / scale)).
FEATURES = (
    ("log_annual_income", "ln(annual income, USD)", 11.0, 0.5),
    ("debt_to_income", "monthly debt payments / monthly income", 0.3, 0.15),
    ("credit_utilization", "revolving balance / revolving limit", 0.4, 0.22),
    ("delinquencies_2y", "30+ day delinquencies in the last 2 years", 0.5, 0.8),
    ("log_loan_amount", "ln(requested loan amount, USD)", 9.6, 0.7),
    ("credit_history_years", "years since the first credit line", 12.0, 7.0),
    ("inquiries_6m", "hard credit inquiries in the last 6 months", 0.8, 0.9),
    ("employment_years", "years with the current employer", 6.0, 4.2),
)
FEATURE_NAMES = tuple(f[0] for f in FEATURES)
INPUT_GRID = 1 / 32
INPUT_CLIP = 4.0

SPEC = ModelSpec(
    name="credit_risk",
    description="MLP 8-16-8-1 (ReLU, clipped logit, sigmoid): a borrower's probability of default",
    task="classification",
    feature_names=FEATURE_NAMES,
    sample_shape=(len(FEATURES),),
    output_names=("probability_of_default",),
    output_units="probability in [0, 1]",
    input_range=(-INPUT_CLIP, INPUT_CLIP),
    input_encoding=(
        "per feature: (transform(raw) - center) / scale with the constants in FEATURES, "
        "rounded to a multiple of 1/32, clipped to [-4, 4]"
    ),
    # A lender prices and approves on PD bands a few points wide; 0.01 absolute keeps the proven PD inside
    # the band the model computed, and the 0.5 decision must agree on (almost) every borrower.
    tolerance={"max_abs_error": 0.01, "label_agreement": 0.99},
    n_train=20000,
    n_test=5000,
    decision_threshold=0.5,
)

HIDDEN = (16, 8)
# The logit is clipped to [-7.6, 7.6] before the sigmoid: PD is floored at 0.05% (Basel III's PD floor for
# retail and corporate exposures) and capped at 99.95%. The clip bounds the sigmoid's lookup input whatever
# the borrower, so a circuit calibrated on samples reaching both bounds proves every input in the declared
# range; and 7.6 rather than 8 keeps that lookup table, with ezkl's 2x safety margin at scale 11, just under
# 2**16 rows (logrows 16 instead of 17).
LOGIT_BOUND = 7.6


def generate_borrowers(n: int, seed: int) -> dict[str, np.ndarray]:
    """Raw borrower records (natural units) and their defaults, seeded."""
    rng = np.random.default_rng(seed)
    income = np.exp(rng.normal(11.0, 0.5, n))
    dti = rng.beta(2.0, 4.5, n) * 0.9
    utilization = rng.beta(1.6, 2.4, n)
    delinquencies = rng.poisson(0.15 + 0.9 * utilization * dti / 0.3).astype(np.float64)
    loan = income * np.exp(rng.normal(np.log(0.25), 0.5, n))
    history = rng.gamma(3.0, 4.0, n)
    inquiries = rng.poisson(0.5 + 0.8 * utilization).astype(np.float64)
    employment = np.minimum(rng.gamma(2.0, 3.0, n), history + 2.0)
    raw = {
        "annual_income": income,
        "debt_to_income": dti,
        "credit_utilization": utilization,
        "delinquencies_2y": delinquencies,
        "loan_amount": loan,
        "credit_history_years": history,
        "inquiries_6m": inquiries,
        "employment_years": employment,
    }
    z = encode(raw).astype(np.float64)
    inc, dti_s, util, delinq, loan_s, hist, inq, emp = z.T
    logit = (
        -2.3
        - 0.55 * inc
        + 0.75 * dti_s
        + 0.6 * util
        + 0.3 * np.maximum(util, 0.0) ** 2
        + 0.25 * dti_s * util
        + 0.5 * (dti > 0.43)
        + 0.55 * delinq
        + 0.45 * (loan_s - inc)
        - 0.4 * hist
        + 0.3 * inq
        - 0.2 * emp
    )
    raw["default"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return raw


def encode(raw: dict[str, np.ndarray]) -> np.ndarray:
    """Raw borrower records -> circuit inputs [n, 8] (float32, multiples of 1/32 in [-4, 4])."""
    transformed = (
        np.log(raw["annual_income"]),
        raw["debt_to_income"],
        raw["credit_utilization"],
        raw["delinquencies_2y"],
        np.log(raw["loan_amount"]),
        raw["credit_history_years"],
        raw["inquiries_6m"],
        raw["employment_years"],
    )
    columns = [(t - center) / scale for t, (_, _, center, scale) in zip(transformed, FEATURES, strict=True)]
    X = np.clip(np.stack(columns, axis=1), -INPUT_CLIP, INPUT_CLIP)
    return (np.round(X / INPUT_GRID) * INPUT_GRID).astype(np.float32)


def generate_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    raw = generate_borrowers(n, seed)
    return encode(raw), raw["default"]


def build_network():
    import torch

    layers = []
    width = len(FEATURES)
    for hidden in HIDDEN:
        layers += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
        width = hidden
    layers += [torch.nn.Linear(width, 1), torch.nn.Hardtanh(-LOGIT_BOUND, LOGIT_BOUND), torch.nn.Sigmoid()]
    return torch.nn.Sequential(*layers)


def train(X: np.ndarray, y: np.ndarray, seed: int, steps: int = 300):
    """Full-batch Adam on the log loss (the sigmoid stays in the network; training uses its clipped logit)."""
    import torch

    with deterministic_torch(seed):
        net = build_network()
        logits_net = net[:-1]
        Xt = torch.from_numpy(np.asarray(X, dtype=np.float32))
        yt = torch.from_numpy(np.asarray(y, dtype=np.float32)).reshape(-1, 1)
        opt = torch.optim.Adam(net.parameters(), lr=0.02, weight_decay=1e-4)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(logits_net(Xt), yt).backward()
            opt.step()
    return net.eval()


def predict(net, X: np.ndarray) -> np.ndarray:
    return torch_predict(net, X)


def evaluate(net, X: np.ndarray, y: np.ndarray) -> dict:
    return classification_metrics(predict(net, X)[:, 0], y)


def classification_metrics(p_default: np.ndarray, y: np.ndarray) -> dict:
    """Held-out metrics of a probability-of-default model."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    return {
        "auc": float(roc_auc_score(y, p_default)),
        "accuracy": float(np.mean((p_default >= 0.5) == (y == 1))),
        "brier": float(brier_score_loss(y, p_default)),
        "log_loss": float(log_loss(y, np.clip(p_default, 1e-7, 1 - 1e-7))),
        "default_rate": float(np.mean(y)),
        "n": int(len(y)),
    }


def export_onnx(net, path, batch_size: int = 1, split_inputs: bool = False) -> None:
    export_torch_onnx(net, path, SPEC.sample_shape, batch_size=batch_size, split_inputs=split_inputs)

"""The model zoo: small, seeded models that train in seconds and export to ONNX for ezkl.

Each zoo model lives in ``models/<name>/model.py`` (a top-level folder next to ``pipeline/``, not an
installed package; ``ZKINFER_MODELS_DIR`` points elsewhere). A model module exposes:

    SPEC                                   a `ModelSpec`: what the model computes, its inputs, its tolerance
    generate_data(n, seed) -> (X, y)       seeded data; X float32 [n, *SPEC.sample_shape]
    train(X, y, seed) -> model             seeded, deterministic training
    predict(model, X) -> np.ndarray        the framework's (torch/sklearn) outputs, float [n, n_outputs]
    evaluate(model, X, y) -> dict          held-out metrics (accuracy, AUC, RMSE, ...)
    export_onnx(model, path, batch_size=1, split_inputs=False)

`prepare` runs all of that into a work directory: ``network.onnx`` plus ``calibration.json`` and
``validation.json`` in ezkl's input format, and ``zoo_model.json`` recording what was prepared. Building
the circuit from those files is `pipeline.build`'s job; `build_zoo_model` does both, in that order (the zoo
drives the build, never the other way round).

Torch is imported only inside the functions that train or export torch models: provers import this
module's helpers without torch installed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from .artifacts import sha256_file, write_json_atomic, write_with
from .errors import InputError, UsageError

if TYPE_CHECKING:
    from .build import BuildResult
    from .compile import CircuitArgs, Visibility

log = logging.getLogger(__name__)

MODELS_DIR_ENV = "ZKINFER_MODELS_DIR"

ONNX_FILE = "network.onnx"
CALIBRATION_FILE = "calibration.json"
VALIDATION_FILE = "validation.json"
RECORD_FILE = "zoo_model.json"

TASKS = ("classification", "regression")
REQUIRED_FUNCTIONS = ("generate_data", "train", "predict", "evaluate", "export_onnx")


@dataclass(frozen=True)
class ModelSpec:
    """What a zoo model computes and how closely its circuit must reproduce onnxruntime.

    `tolerance` is the declared fidelity requirement, checked on held-out samples: ``max_abs_error`` on every
    output (in the output's units) and, for classifiers, ``label_agreement`` (fraction of samples whose
    label from the circuit's outputs equals the label from onnxruntime's).
    """

    name: str
    description: str
    task: str
    feature_names: tuple[str, ...]
    sample_shape: tuple[int, ...]
    output_names: tuple[str, ...]
    output_units: str
    # Every circuit input lies in this closed range (the data generator clips to it); provers should reject
    # inputs outside it, since the circuit was calibrated on data inside it.
    input_range: tuple[float, float]
    # How contracts and provers must encode raw data into circuit inputs.
    input_encoding: str
    tolerance: dict
    n_train: int
    n_test: int
    # Classifiers with a single probability output: label = output >= decision_threshold. None: argmax.
    decision_threshold: float | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"{self.name}: task must be one of {TASKS}, not {self.task!r}")
        if "max_abs_error" not in self.tolerance:
            raise ValueError(f"{self.name}: tolerance needs max_abs_error")
        if self.task == "classification" and "label_agreement" not in self.tolerance:
            raise ValueError(f"{self.name}: a classifier's tolerance needs label_agreement")
        if int(np.prod(self.sample_shape)) != len(self.feature_names):
            raise ValueError(
                f"{self.name}: {len(self.feature_names)} feature names for shape {self.sample_shape}"
            )

    @property
    def n_features(self) -> int:
        return int(np.prod(self.sample_shape))

    @property
    def n_outputs(self) -> int:
        return len(self.output_names)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["feature_names"] = list(self.feature_names)
        d["sample_shape"] = list(self.sample_shape)
        d["output_names"] = list(self.output_names)
        d["input_range"] = list(self.input_range)
        return d


@dataclass(frozen=True)
class ZooModel:
    """A loaded zoo model: its spec and the module implementing it."""

    name: str
    spec: ModelSpec
    module: ModuleType
    path: Path


@dataclass(frozen=True)
class PreparedModel:
    """What `prepare` wrote into `work_dir`, and what the circuit build needs to know about it."""

    name: str
    work_dir: Path
    onnx_path: Path
    calibration_path: Path
    validation_path: Path
    record_path: Path
    spec: ModelSpec
    seed: int
    batch_size: int
    split_inputs: bool
    n_calibration: int
    n_validation: int
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    metrics: dict

    @property
    def tolerance(self) -> dict:
        return self.spec.tolerance

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.spec.feature_names

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "split_inputs": self.split_inputs,
            "n_calibration": self.n_calibration,
            "n_validation": self.n_validation,
            "input_shapes": [list(s) for s in self.input_shapes],
            "output_shape": list(self.output_shape),
            "metrics": self.metrics,
            "spec": self.spec.to_dict(),
            "files": {
                p.name: sha256_file(p) for p in (self.onnx_path, self.calibration_path, self.validation_path)
            },
        }


def models_dir() -> Path:
    """The folder holding one subfolder per zoo model: ``$ZKINFER_MODELS_DIR`` or the repo's ``models/``."""
    override = os.environ.get(MODELS_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / "models"


def list_models() -> list[str]:
    """Names of the zoo models (subfolders of `models_dir()` holding a ``model.py``), sorted."""
    root = models_dir()
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir() if (p / "model.py").is_file() and not p.name.startswith(("_", "."))
    )


def load(name: str) -> ZooModel:
    """Import ``models/<name>/model.py`` and check that it implements the zoo interface."""
    known = list_models()
    if name not in known:
        listing = ", ".join(known) if known else f"none found in {models_dir()}"
        raise UsageError(f"unknown zoo model {name!r}; known models: {listing}")
    path = models_dir() / name / "model.py"
    module = import_model_file(path)
    spec = getattr(module, "SPEC", None)
    if not isinstance(spec, ModelSpec):
        raise UsageError(f"{path}: SPEC must be a pipeline.zoo.ModelSpec")
    if spec.name != name:
        raise UsageError(f"{path}: SPEC.name is {spec.name!r}, expected the folder name {name!r}")
    missing = [f for f in REQUIRED_FUNCTIONS if not callable(getattr(module, f, None))]
    if missing:
        raise UsageError(f"{path}: missing {', '.join(missing)}")
    return ZooModel(name=name, spec=spec, module=module, path=path)


def import_model_file(path: str | os.PathLike) -> ModuleType:
    """Import a model file by path, once per process (a model may import another's file to share its data)."""
    path = Path(path).resolve()
    module_name = f"zkinfer_zoo.{path.parent.name}"
    cached = sys.modules.get(module_name)
    if cached is not None and Path(cached.__file__).resolve() == path:
        return cached
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import model file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def split_data(model: ZooModel, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The model's seeded data split into ``train`` (the first ``n_train`` samples) and ``test`` (the rest).

    The split depends only on the seed and the spec, so the held-out set does not move when callers ask
    for more or fewer validation samples.
    """
    spec = model.spec
    X, y = model.module.generate_data(spec.n_train + spec.n_test, seed)
    X = np.asarray(X, dtype=np.float32)
    if X.shape != (spec.n_train + spec.n_test, *spec.sample_shape):
        raise ValueError(f"{spec.name}: generate_data returned X of shape {X.shape}")
    return {"train": (X[: spec.n_train], y[: spec.n_train]), "test": (X[spec.n_train :], y[spec.n_train :])}


def prepare(
    name: str,
    work_dir: str | os.PathLike,
    batch_size: int = 1,
    split_inputs: bool = False,
    seed: int = 0,
    n_calibration: int = 32,
    n_validation: int = 32,
) -> PreparedModel:
    """Generate data, train, export ``work_dir/network.onnx`` and write ezkl calibration/validation inputs.

    Calibration samples are `calibration_samples` (range-stressing samples, then training samples),
    validation samples the first held-out test samples: disjoint by construction. Both files hold whole
    batches: `n_calibration` and `n_validation` are rounded up to a multiple of `batch_size`. The same
    arguments give the same data, weights and ONNX bytes.
    """
    model = load(name)
    spec = model.spec
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    if n_calibration < 1 or n_validation < 1:
        raise UsageError("need at least one calibration and one validation sample")
    n_calibration = _round_up(n_calibration, batch_size)
    n_validation = _round_up(n_validation, batch_size)
    if n_calibration > spec.n_train or n_validation > spec.n_test:
        raise UsageError(
            f"{name}: at most {spec.n_train} calibration and {spec.n_test} validation samples "
            f"(asked for {n_calibration} and {n_validation} after rounding up to whole batches)"
        )

    data = split_data(model, seed)
    X_train, y_train = data["train"]
    X_test, y_test = data["test"]
    trained = model.module.train(X_train, y_train, seed)
    metrics = model.module.evaluate(trained, X_test, y_test)
    calibration = calibration_samples(model, trained, X_train, n_calibration, seed)

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = work_dir / ONNX_FILE
    write_with(
        onnx_path,
        lambda tmp: model.module.export_onnx(trained, tmp, batch_size=batch_size, split_inputs=split_inputs),
    )
    calibration_path = write_json_atomic(
        work_dir / CALIBRATION_FILE, ezkl_input(calibration, batch_size, split_inputs), indent=None
    )
    validation_path = write_json_atomic(
        work_dir / VALIDATION_FILE, ezkl_input(X_test[:n_validation], batch_size, split_inputs), indent=None
    )
    if split_inputs:
        input_shapes = tuple((1, *spec.sample_shape) for _ in range(batch_size))
    else:
        input_shapes = ((batch_size, *spec.sample_shape),)
    prepared = PreparedModel(
        name=name,
        work_dir=work_dir,
        onnx_path=onnx_path,
        calibration_path=calibration_path,
        validation_path=validation_path,
        record_path=work_dir / RECORD_FILE,
        spec=spec,
        seed=seed,
        batch_size=batch_size,
        split_inputs=split_inputs,
        n_calibration=n_calibration,
        n_validation=n_validation,
        input_shapes=input_shapes,
        output_shape=(batch_size, spec.n_outputs),
        metrics=metrics,
    )
    write_json_atomic(prepared.record_path, prepared.to_dict())
    return prepared


N_BOX_CORNERS = 256
SEARCH_GRID_POINTS = 33
SEARCH_SWEEPS = 2


def build_zoo_model(name: str, out_dir: str | os.PathLike, *, batch_size: int = 1, split_inputs: bool = False,
                    visibility: Visibility | None = None, srs_path: Path | None = None, seed: int = 0,
                    max_attempts: int | None = None, circuit_args: CircuitArgs | None = None, force: bool = False,
                    progress: Callable[[str], None] | None = None) -> BuildResult:
    """`make circuit MODEL=name`: train and export a zoo model into out_dir/source, then build its circuit.

    The zoo declares the model's fidelity requirement; `split_inputs` exports one ONNX input per inference
    (so hashed-input visibility gives one Poseidon hash per subject).
    """
    from .build import BuildOptions, build_circuit
    from .compile import CircuitArgs, Visibility
    from .fidelity import Tolerance

    out_dir = Path(out_dir)
    (progress or log.info)(f"preparing zoo model {name} (seed {seed}, batch {batch_size})")
    prepared = prepare(name, out_dir / "source", batch_size=batch_size, split_inputs=split_inputs, seed=seed)
    options = BuildOptions(
        name=name if batch_size == 1 else f"{name}_k{batch_size}",
        visibility=visibility or Visibility(), batch_size=batch_size,
        tolerance=Tolerance.from_dict(prepared.tolerance), task=prepared.task,
        srs_path=srs_path, max_attempts=max_attempts, seed=seed, circuit_args=circuit_args or CircuitArgs(),
    )
    return build_circuit(prepared.onnx_path, prepared.calibration_path, out_dir, options, prepared.validation_path,
                         force=force, progress=progress)


def calibration_samples(model: ZooModel, trained, X_train: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` calibration samples: range-stressing samples first, then the first training samples.

    ezkl sizes each lookup table (sigmoid, tanh, ...) from the inputs the calibration data sends through it,
    times a safety margin, and a prover input beyond that range fails to prove. ``gen_witness`` does not
    notice; ``mock`` and ``prove`` do. Typical data is not enough: with 18% defaults, 32 random borrowers can
    all have negative logits, and every high-risk borrower would then be unprovable. So the set starts with,
    for each output, an input of the declared box giving (nearly) its smallest and one its largest value:
    the inputs that push the nonlinearities furthest, so that every input in `SPEC.input_range` stays
    provable. Models bound what they cannot search exhaustively (credit models clip their logit).
    """
    spec = model.spec
    low, high = spec.input_range
    rng = np.random.default_rng(seed)
    corners = np.where(rng.random((N_BOX_CORNERS, *spec.sample_shape)) < 0.5, low, high)
    pool = np.concatenate(
        [X_train, corners, np.full((1, *spec.sample_shape), low), np.full((1, *spec.sample_shape), high)]
    ).astype(np.float32)
    outputs = np.asarray(model.module.predict(trained, pool)).reshape(len(pool), -1)
    grid = np.linspace(low, high, SEARCH_GRID_POINTS, dtype=np.float32)
    stress = []
    for j in range(outputs.shape[1]):
        for sign in (-1.0, 1.0):
            start = pool[int((sign * outputs[:, j]).argmax())]
            stress.append(_coordinate_search(model, trained, start, j, sign, grid))
    stress = np.stack(stress)
    _, first_index = np.unique(stress, axis=0, return_index=True)
    stress = stress[np.sort(first_index)][:n]  # deduplicated, in search order
    return np.concatenate([stress, X_train[: n - len(stress)]]).astype(np.float32)


def _coordinate_search(
    model: ZooModel, trained, start: np.ndarray, output: int, sign: float, grid
) -> np.ndarray:
    """Push output `output` up (sign +1) or down (-1) by changing one input at a time to a grid value."""
    x = start.reshape(-1).copy()
    best = sign * float(model.module.predict(trained, x.reshape(1, *model.spec.sample_shape))[0, output])
    for _ in range(SEARCH_SWEEPS):
        improved = False
        for feature in range(x.size):
            candidates = np.repeat(x[None], len(grid), axis=0)
            candidates[:, feature] = grid
            values = (
                sign
                * model.module.predict(trained, candidates.reshape(-1, *model.spec.sample_shape))[:, output]
            )
            i = int(values.argmax())
            if values[i] > best:
                x, best, improved = candidates[i], float(values[i]), True
        if not improved:
            break
    return x.reshape(model.spec.sample_shape)


def ezkl_input(samples: np.ndarray, batch_size: int = 1, split_inputs: bool = False) -> dict:
    """ezkl's input.json for several samples: ``{"input_data": [flat list per ONNX input]}``.

    With one input of shape [batch_size, ...], its list holds all samples one after another (ezkl splits it
    into batches). With `split_inputs`, input i receives samples i, i + batch_size, i + 2 * batch_size, ...
    so that each run of the graph sees consecutive samples, as in the unsplit layout.
    """
    samples = np.asarray(samples, dtype=np.float64)
    n = samples.shape[0]
    if n % batch_size:
        raise InputError(f"{n} samples do not fill whole batches of {batch_size}")
    flat = samples.reshape(n, -1)
    if not split_inputs:
        return {"input_data": [flat.reshape(-1).tolist()]}
    return {"input_data": [flat[i::batch_size].reshape(-1).tolist() for i in range(batch_size)]}


def labels_from_outputs(spec: ModelSpec, outputs: np.ndarray) -> np.ndarray:
    """Class labels a classifier's outputs mean: threshold a single probability, else argmax."""
    outputs = np.asarray(outputs).reshape(-1, spec.n_outputs)
    if spec.decision_threshold is not None:
        return (outputs[:, 0] >= spec.decision_threshold).astype(np.int64)
    return outputs.argmax(axis=1)


def onnxruntime_outputs(
    onnx_path: str | os.PathLike, samples: np.ndarray, split_inputs: bool = False
) -> np.ndarray:
    """onnxruntime's outputs [n, n_outputs] of an exported zoo model on `samples` (whole batches)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    batch_size = len(inputs) if split_inputs else inputs[0].shape[0]
    samples = np.asarray(samples, dtype=np.float32)
    if samples.shape[0] % batch_size:
        raise InputError(f"{samples.shape[0]} samples do not fill whole batches of {batch_size}")
    outputs = []
    for start in range(0, samples.shape[0], batch_size):
        batch = samples[start : start + batch_size]
        if split_inputs:
            feed = {inp.name: batch[i : i + 1] for i, inp in enumerate(inputs)}
        else:
            feed = {inputs[0].name: batch}
        outputs.append(session.run(None, feed)[0])
    return np.concatenate(outputs, axis=0)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple

"""`zkinfer circuit build|estimate|zoo|list` and `zkinfer export`: models into circuits."""

from __future__ import annotations

import click

from .base import circuit_args, cli, echo_lines, layout_options, progress, visibility_options


@cli.group()
def circuit():
    """Build circuits from ONNX models."""


@circuit.command("build")
@click.argument("onnx_path", metavar="ONNX", type=click.Path(dir_okay=False))
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False),
              help="Calibration inputs in ezkl's input.json format (several samples back to back).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--validation", "validation_path", type=click.Path(dir_okay=False),
              help="Held-out inputs for the fidelity gate (default: derived from the calibration data).")
@click.option("--tolerance", type=float, help="Max absolute error allowed against onnxruntime.")
@click.option("--label-agreement", type=float, help="Classifiers: fraction of labels that must match.")
@click.option("--task", type=click.Choice(["classification", "regression"]))
@visibility_options
@click.option("--batch", "batch_size", type=int, help="Value for the model's symbolic batch dimension.")
@click.option("--dim", "dims", multiple=True, metavar="NAME=N",
              help="Value for another symbolic input dimension (repeatable).")
@click.option("--srs", "srs_path", type=click.Path(dir_okay=False),
              help="A ceremony SRS file (default: a cached dev SRS, insecure).")
@click.option("--max-attempts", type=int, help="Calibration attempts allowed by the fidelity gate.")
@click.option("--max-logrows", type=int, help="Upper bound on the circuit size (2^logrows rows).")
@click.option("--no-rewrite", "skip_rewrites", multiple=True, metavar="NAME",
              help="Do not apply this graph rewrite (repeatable; for comparing with plain ezkl or debugging).")
@click.option("--name", help="Circuit name recorded in the manifest (default: the output folder's name).")
@layout_options
@click.option("--force", is_flag=True, help="Rebuild even if nothing changed.")
def circuit_build(onnx_path, data_path, out_dir, validation_path, tolerance, label_agreement, task,
                  input_visibility, output_visibility, param_visibility, batch_size, dims, srs_path, max_attempts,
                  max_logrows, skip_rewrites, name, num_inner_cols, decomp_base, decomp_legs, force):
    """Compile ONNX into a Halo2/KZG circuit with keys, a fidelity report and a manifest."""
    from ..build import BuildOptions, build_circuit
    from ..compile import Visibility
    from ..fidelity import Tolerance

    tol = None
    if tolerance is not None or label_agreement is not None:
        if tolerance is None:
            raise click.UsageError("--label-agreement needs --tolerance too")
        tol = Tolerance(max_abs_error=tolerance, label_agreement=label_agreement)
    options = BuildOptions(
        name=name, visibility=Visibility(input_visibility, output_visibility, param_visibility),
        batch_size=batch_size, dims=parse_dims(dims), tolerance=tol, task=task, srs_path=srs_path,
        max_attempts=max_attempts, skip_rewrites=skip_rewrites,
        max_logrows=max_logrows, circuit_args=circuit_args(num_inner_cols, decomp_base, decomp_legs))
    result = build_circuit(onnx_path, data_path, out_dir, options, validation_path, force=force, progress=progress)
    print_build(result)


@circuit.command("estimate")
@click.argument("onnx_path", metavar="ONNX", type=click.Path(dir_okay=False))
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False), help="Calibration inputs.")
@visibility_options
@click.option("--batch", "batch_size", type=int, help="Value for the model's symbolic batch dimension.")
@click.option("--dim", "dims", multiple=True, metavar="NAME=N", help="Another symbolic dimension (repeatable).")
@click.option("--max-logrows", type=int, help="Upper bound on the circuit size (2^logrows rows).")
@click.option("--verifier", "verifier_mode", type=click.Choice(["standard", "split-vk", "reusable"]),
              default="standard", show_default=True, help="Verifier the gas is predicted for.")
@layout_options
def circuit_estimate(onnx_path, data_path, input_visibility, output_visibility, param_visibility, batch_size, dims,
                     max_logrows, verifier_mode, num_inner_cols, decomp_base, decomp_legs):
    """Predict logrows, key size, memory, prove time and gas from calibrated settings, without making keys."""
    from ..build import BuildOptions
    from ..compile import Visibility
    from ..estimate import estimate_circuit

    options = BuildOptions(visibility=Visibility(input_visibility, output_visibility, param_visibility),
                           batch_size=batch_size, dims=parse_dims(dims), max_logrows=max_logrows,
                           circuit_args=circuit_args(num_inner_cols, decomp_base, decomp_legs))
    click.echo(estimate_circuit(onnx_path, data_path, options, verifier_mode, progress=progress).describe())


def parse_dims(given: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    out = []
    for text in given:
        name, sep, value = text.partition("=")
        if not sep or not name or not value.strip().isdigit():
            raise click.UsageError(f"--dim takes NAME=N with N a whole number, got {text!r}")
        out.append((name, int(value)))
    return tuple(out)


@circuit.command("zoo")
@click.argument("name")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Output directory (default circuits/NAME).")
@visibility_options
@click.option("--batch", "batch_size", type=int, default=1, show_default=True, help="Inferences per proof.")
@click.option("--split-inputs", is_flag=True, help="One ONNX input per inference (one input hash per subject).")
@click.option("--srs", "srs_path", type=click.Path(dir_okay=False), help="A ceremony SRS file.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-attempts", type=int, help="Calibration attempts allowed by the fidelity gate.")
@layout_options
@click.option("--force", is_flag=True, help="Rebuild even if nothing changed.")
def circuit_zoo(name, out_dir, input_visibility, output_visibility, param_visibility, batch_size, split_inputs,
                srs_path, seed, max_attempts, num_inner_cols, decomp_base, decomp_legs, force):
    """Train a zoo model (models/NAME), export it and build its circuit."""
    from ..compile import Visibility
    from ..zoo import build_zoo_model

    result = build_zoo_model(
        name, out_dir or f"circuits/{name}", batch_size=batch_size, split_inputs=split_inputs,
        visibility=Visibility(input_visibility, output_visibility, param_visibility), srs_path=srs_path,
        seed=seed, max_attempts=max_attempts, circuit_args=circuit_args(num_inner_cols, decomp_base, decomp_legs),
        force=force, progress=progress)
    print_build(result)


@circuit.command("list")
def circuit_list():
    """List the zoo models."""
    from .. import zoo

    for name in zoo.list_models():
        click.echo(f"{name:20s} {zoo.load(name).spec.description}")


def print_build(result) -> None:
    from ..srs import INSECURE_WARNING

    echo_lines(result.manifest.summary_lines(rebuilt=result.rebuilt))
    if result.manifest.insecure_srs:
        click.echo(INSECURE_WARNING, err=True)


@cli.command("export")
@click.argument("model_file", metavar="MODEL_FILE", type=click.Path(dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="ONNX file to write.")
@click.option("--n-features", type=int, help="Check the model takes this many features.")
def export_cmd(model_file, out_path, n_features):
    """Export a fitted scikit-learn, XGBoost or LightGBM model to ONNX that circuits compute exactly.

    MODEL_FILE: an XGBoost model (.json, .ubj), a LightGBM model (.txt), or a pickle (.pkl, .pickle,
    .joblib) of a fitted scikit-learn estimator or pipeline. Loading a pickle runs code from it: only give
    files you trust. Then: zkinfer circuit build OUT --data calibration.json --out DIR.
    """
    from ..export import export_model

    click.echo(export_model(model_file, out_path, n_features=n_features).describe())

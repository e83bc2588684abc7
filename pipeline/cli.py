"""The `zkinfer` command line: a thin click layer. Each command calls one library function.

User mistakes raise `ZkinferError`; `main` prints its one-line message and exits with its code
(2 for usage errors), never a traceback.
"""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import ZkinferError
from .jobs import DEFAULT_TIMEOUT_S


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zkinfer")
def cli():
    """zkinfer: provable ML inference for smart contracts (ONNX -> Halo2/KZG with ezkl -> Solidity)."""


def _progress(msg: str) -> None:
    click.echo(msg, err=True)


def _all_of(options: list):
    """One decorator applying several click options, in the order listed."""
    def apply(f):
        for opt in reversed(options):
            f = opt(f)
        return f
    return apply


visibility_options = _all_of([
    click.option("--input-visibility", type=click.Choice(["public", "private", "hashed"]), default="public",
                 show_default=True, help="public: inputs are proof instances; hashed: only their Poseidon hash is."),
    click.option("--output-visibility", type=click.Choice(["public", "private", "hashed"]), default="public",
                 show_default=True),
    click.option("--param-visibility", type=click.Choice(["fixed", "private", "hashed"]), default="fixed",
                 show_default=True, help="fixed: weights baked into the keys; hashed: a public weight commitment."),
])
layout_options = _all_of([
    click.option("--num-inner-cols", type=int, help="Advanced: advice columns per operation (ezkl default 2)."),
    click.option("--decomp-base", type=int, help="Advanced: range-check decomposition base (ezkl default 16384)."),
    click.option("--decomp-legs", type=int, help="Advanced: range-check decomposition legs (ezkl default 2)."),
])


def _circuit_args(num_inner_cols, decomp_base, decomp_legs):
    from .compile import CircuitArgs

    return CircuitArgs(num_inner_cols=num_inner_cols, decomp_base=decomp_base, decomp_legs=decomp_legs)


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
    from .build import BuildOptions, build_circuit
    from .compile import Visibility
    from .fidelity import Tolerance

    tol = None
    if tolerance is not None or label_agreement is not None:
        if tolerance is None:
            raise click.UsageError("--label-agreement needs --tolerance too")
        tol = Tolerance(max_abs_error=tolerance, label_agreement=label_agreement)
    options = BuildOptions(
        name=name, visibility=Visibility(input_visibility, output_visibility, param_visibility),
        batch_size=batch_size, dims=_parse_dims(dims), tolerance=tol, task=task, srs_path=srs_path,
        max_attempts=max_attempts, skip_rewrites=skip_rewrites,
        max_logrows=max_logrows, circuit_args=_circuit_args(num_inner_cols, decomp_base, decomp_legs))
    result = build_circuit(onnx_path, data_path, out_dir, options, validation_path, force=force, progress=_progress)
    _print_build(result)


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
    from .build import BuildOptions
    from .compile import Visibility
    from .estimate import estimate_circuit

    options = BuildOptions(visibility=Visibility(input_visibility, output_visibility, param_visibility),
                           batch_size=batch_size, dims=_parse_dims(dims), max_logrows=max_logrows,
                           circuit_args=_circuit_args(num_inner_cols, decomp_base, decomp_legs))
    click.echo(estimate_circuit(onnx_path, data_path, options, verifier_mode, progress=_progress).describe())


def _parse_dims(given: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
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
    from .compile import Visibility
    from .zoo import build_zoo_model

    result = build_zoo_model(
        name, out_dir or f"circuits/{name}", batch_size=batch_size, split_inputs=split_inputs,
        visibility=Visibility(input_visibility, output_visibility, param_visibility), srs_path=srs_path,
        seed=seed, max_attempts=max_attempts, circuit_args=_circuit_args(num_inner_cols, decomp_base, decomp_legs),
        force=force, progress=_progress)
    _print_build(result)


@circuit.command("list")
def circuit_list():
    """List the zoo models."""
    from . import zoo

    for name in zoo.list_models():
        click.echo(f"{name:20s} {zoo.load(name).spec.description}")


def _print_build(result) -> None:
    from .srs import INSECURE_WARNING

    _echo_lines(result.manifest.summary_lines(rebuilt=result.rebuilt))
    if result.manifest.insecure_srs:
        click.echo(INSECURE_WARNING, err=True)


def _echo_lines(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


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
    from .export import export_model

    click.echo(export_model(model_file, out_path, n_features=n_features).describe())


@cli.command("prove")
@click.argument("circuit_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.argument("input_path", metavar="INPUT.json", type=click.Path(dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Proof file to write.")
def prove_cmd(circuit_dir, input_path, out_path):
    """Prove one inference (ezkl input.json) with a built circuit."""
    from .prooffile import ProofFile
    from .prove import prove_file

    content, outputs = prove_file(circuit_dir, input_path, out_path)
    proof = ProofFile.from_json(content, out_path)
    kind = "public outputs" if proof.outputs_public else "outputs (private: not in the proof file)"
    click.echo(f"proof:     {out_path} ({proof.meta.prove_s:.2f} s)")
    click.echo(f"{kind}: {outputs}")


@cli.command("verify")
@click.argument("circuit_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.argument("proof_path", metavar="PROOF.json", type=click.Path(dir_okay=False))
def verify_cmd(circuit_dir, proof_path):
    """Verify a proof: exit 0 valid, 1 invalid, 2 usage error."""
    from .verify import verify_proof

    result = verify_proof(circuit_dir, proof_path)
    if result.valid:
        click.echo(f"valid: outputs {result.outputs}")
        return
    click.echo(f"invalid: {result.reason}")
    sys.exit(1)


@cli.command("bench")
@click.option("--out", "out_path", default="bench/results.json", show_default=True, type=click.Path(dir_okay=False))
@click.option("--section", "sections", multiple=True, help="Only these sections (repeatable).")
@click.option("--model", "models", multiple=True, help="Only these zoo models (repeatable).")
@click.option("--circuits", "circuits_dir", default="circuits", show_default=True, type=click.Path(file_okay=False))
@click.option("--report-only", is_flag=True, help="Only regenerate REPORT.md and its plots from the results file.")
def bench_cmd(out_path, sections, models, circuits_dir, report_only):
    """Benchmark the zoo (sections: see pipeline/bench.py), then write REPORT.md and plots beside the results."""
    from .bench import report, run

    if not report_only:
        run(out_path, list(sections) or None, circuits_dir, list(models) or None, progress=_progress)
        click.echo(f"results: {out_path}")
    click.echo(f"report: {report(out_path)}")


@cli.command("reliability")
@click.option("--out", "out_path", default="bench/reliability.json", show_default=True,
              type=click.Path(dir_okay=False))
@click.option("--short", is_flag=True, help="The test suite's small case counts instead of the full figures.")
@click.option("--only", "only", multiple=True, help="Only this check (repeatable).")
@click.option("--work", "work_dir", default=".zkinfer/reliability", show_default=True,
              type=click.Path(file_okay=False), help="Where the checks build, prove and crash things.")
def reliability_cmd(out_path, short, only, work_dir):
    """Reliability and adversarial checks with counted results (proof mutation off and on chain, malformed
    inputs, crashes, a lost Ray node, tampered artifacts): writes OUT and prints a table."""
    from . import reliability

    data = reliability.run(out_path, reliability.SHORT if short else reliability.FULL, work_dir, tuple(only),
                           say=_progress)
    failures = sum(t.get("failures", 0) for t in data["tests"] if not only or t["name"] in only)
    click.echo(f"results: {out_path}")
    if failures:
        sys.exit(1)


def _echo_json(obj) -> None:
    import json

    click.echo(json.dumps(obj, indent=2, default=str))


# ---------------------------------------------------------------------------------------------------------
# Contracts and chain


@cli.group()
def contracts():
    """Solidity: the project's contracts and circuits' verifiers (pinned solcjs, offline)."""


VERIFIER_OPTION = click.option(
    "--verifier", "verifier_mode", type=click.Choice(["auto", "standard", "split-vk", "reusable"]), default="auto",
    show_default=True,
    help="auto: the first that fits EIP-170's 24,576-byte code limit, in this order. standard: ezkl's verifier, "
         "the verifying key in its code. split-vk: the key in a data contract, checked by keccak256 (~3k gas "
         "more per proof). reusable: ezkl's shared verifier plus this circuit's key artifact (~30% more gas).")


@contracts.command("build")
@click.argument("circuit_dir", metavar="[DIR]", required=False, type=click.Path(file_okay=False))
@VERIFIER_OPTION
@click.option("--reusable", is_flag=True, default=None, help="Same as --verifier reusable.")
def contracts_build(circuit_dir, verifier_mode, reusable):
    """Compile verifier_contracts/src, and DIR's verifier into DIR/evm when DIR is given."""
    from . import evm

    mode = evm.verifier_mode(verifier_mode, reusable)
    for name, path in sorted(evm.build_contracts().items()):
        click.echo(f"{name:24s} {evm.load_artifact(path)['runtimeSize']:6d} B  {path}")
    if circuit_dir:
        _echo_lines(evm.choose_verifier(circuit_dir, mode).summary_lines())


@cli.group("chain")
def chain_group():
    """A local anvil node (pinned npm package, Ethereum mainnet's limits)."""


@chain_group.command("up")
@click.option("--port", type=int, help="Port to listen on (default: a free one).")
def chain_up_cmd(port):
    """Start anvil in the background (or report the one running)."""
    from . import chain

    node = chain.chain_up(port=port)
    click.echo(f"rpc: {node.rpc_url}  chain id: {node.chain_id}  pid: {node.pid}  log: {node.log_path}")


@chain_group.command("down")
def chain_down_cmd():
    """Stop the anvil started by `zkinfer chain up`."""
    from . import chain

    node = chain.chain_down()
    click.echo(f"stopped anvil (pid {node.pid})" if node else "no local chain was running")


def _rpc(rpc: str | None) -> str:
    """--rpc, or the local chain `zkinfer chain up` started."""
    from . import chain
    from .errors import UsageError

    if rpc:
        return rpc
    node = chain.local_chain()
    if node is None:
        raise UsageError("no --rpc given and no local chain running: start one with `zkinfer chain up`")
    return node.rpc_url


RPC_OPTION = click.option("--rpc", help="JSON-RPC URL (default: the chain `zkinfer chain up` started).")
DEPLOYMENTS_OPTION = click.option("--deployments", "deployments_dir", default="deployments",
                                  show_default=True, type=click.Path(file_okay=False),
                                  help="Where deployments/<chainId>.json lives.")
SUBJECT_OPTION = click.option("--subject", "subjects", multiple=True,
                              help="Lending: a borrower address per proof slot, in order (repeatable).")


@cli.command("deploy")
@click.argument("circuit_dir", metavar="DIR", type=click.Path(file_okay=False))
@RPC_OPTION
@click.option("--consumer", type=click.Choice(["lending", "bond"]), default="lending", show_default=True,
              help="The gate acting on the proofs.")
@VERIFIER_OPTION
@click.option("--reusable/--no-reusable", default=None,
              help="Same as --verifier reusable / --verifier standard.")
@click.option("--allow-insecure-srs", is_flag=True,
              help="Deploy a circuit built on an insecure SRS (a dev SRS, or an --srs file that is not "
                   "the pinned public ceremony file) to a chain other than 31337.")
@click.option("--max-feature-age", type=int, default=24 * 3600, show_default=True,
              help="Seconds posted features stay usable.")
@DEPLOYMENTS_OPTION
def deploy_cmd(circuit_dir, rpc, consumer, verifier_mode, reusable, allow_insecure_srs, max_feature_age,
               deployments_dir):
    """Deploy DIR's verifier, the registry and a gate; register the model."""
    from . import chain, evm

    mode = evm.verifier_mode(verifier_mode, reusable)  # (a contradiction is a usage error before any RPC)
    d = chain.deploy(circuit_dir, _rpc(rpc), consumer, verifier_mode=mode,
                     allow_insecure_srs=allow_insecure_srs, max_feature_age=max_feature_age,
                     deployments_dir=deployments_dir)
    _echo_json(d.summary())


@cli.command("post-features")
@click.argument("proof_paths", metavar="PROOF.json...", nargs=-1, required=True,
                type=click.Path(dir_okay=False))
@RPC_OPTION
@SUBJECT_OPTION
@DEPLOYMENTS_OPTION
def post_features_cmd(proof_paths, rpc, subjects, deployments_dir):
    """As the feature publisher, post the features the proofs are about (demo and test convenience)."""
    from dataclasses import asdict

    from . import chain

    postings = chain.post_features(list(proof_paths), _rpc(rpc), subjects=list(subjects),
                                   deployments_dir=deployments_dir)
    _echo_json([asdict(p) for p in postings])


@cli.command("withdraw-features")
@click.argument("circuit", metavar="CIRCUIT")
@RPC_OPTION
@SUBJECT_OPTION
@DEPLOYMENTS_OPTION
def withdraw_features_cmd(circuit, rpc, subjects, deployments_dir):
    """As a feature publisher, withdraw postings no proof acted on yet on CIRCUIT's gate (the circuit's name
    in the deployments file): the borrowers given with --subject, or the bond's current period."""
    from . import chain

    _echo_json(chain.withdraw_features(circuit, _rpc(rpc), subjects=list(subjects), deployments_dir=deployments_dir))


@cli.command("commitment")
@click.argument("circuit_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.argument("features", metavar="X1,X2,...")
@click.option("--salt", help="Hashed inputs: the subject's secret salt (0x and 32 hex digits), required.")
def commitment_cmd(circuit_dir, features, salt):
    """The feature commitment a publisher posts for one subject: Poseidon of the features and the
    subject's salt (hashed inputs) or keccak256 of the features (public inputs), quantized as the circuit
    quantizes them."""
    from . import chain

    values = []
    for i, text in enumerate(features.split(",")):
        try:
            values.append(float(text))
        except ValueError:
            raise click.UsageError(f"feature {i + 1} is not a number: {text.strip()!r}") from None
    click.echo(chain.feature_commitment(circuit_dir, values, salt))


@cli.command("salt")
@click.option("-n", "count", type=click.IntRange(min=1), default=1, show_default=True, help="How many.")
def salt_cmd(count):
    """Fresh random salts (128 bits each, one per line) for hashed-input subjects: the publisher and the
    prover share a subject's salt and keep it secret; a new one per posting."""
    from .blinding import new_salt

    for _ in range(count):
        click.echo(new_salt())


@cli.command("submit")
@click.argument("proof_paths", metavar="PROOF.json...", nargs=-1, required=True,
                type=click.Path(dir_okay=False))
@RPC_OPTION
@SUBJECT_OPTION
@DEPLOYMENTS_OPTION
def submit_cmd(proof_paths, rpc, subjects, deployments_dir):
    """Send proofs to their circuits' gates; print each action's effect and gas."""
    from dataclasses import asdict

    from . import chain

    results = chain.submit(list(proof_paths), _rpc(rpc), subjects=list(subjects),
                           deployments_dir=deployments_dir)
    _echo_json([asdict(r) for r in results])


@cli.command("audit")
@click.argument("artifacts_dir", metavar="ARTIFACTS", required=False, type=click.Path(file_okay=False))
@RPC_OPTION
@click.option("--deployments", "deployments", type=click.Path(),
              help="The deployments file (deployments/<chainId>.json) or its folder.")
@click.option("--registry", help="The ModelRegistry's address (default: the deployments file's).")
@click.option("--model-id", type=click.IntRange(min=1), help="Model version (default: the file's for ARTIFACTS).")
@click.option("--srs", "srs_path", type=click.Path(dir_okay=False),
              help="The SRS file, when ARTIFACTS publishes only its identity.")
@click.option("--events", "list_events", is_flag=True, help="List every action a gate took with the model.")
def audit_cmd(artifacts_dir, rpc, deployments, registry, model_id, srs_path, list_events):
    """Rebuild ARTIFACTS (network.onnx, settings.json, manifest.json, SRS) and check the deployed model against
    it: exit 0 when everything matches, 1 on a mismatch, 2 for usage errors."""
    from . import audit

    if list_events:
        click.echo(audit.events_text(audit.events(_rpc(rpc), deployments=deployments, registry=registry,
                                                  model_id=model_id)))
        return
    if not artifacts_dir:
        raise click.UsageError("give the published ARTIFACTS folder (or --events)")
    report = audit.audit(artifacts_dir, _rpc(rpc), deployments=deployments, registry=registry,
                         model_id=model_id, srs=srs_path)
    click.echo(report.text())
    sys.exit(report.exit_code)


@cli.command("batch")
@click.argument("circuit_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.argument("inputs_path", metavar="INPUTS", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output directory: the job store (jobs.sqlite) and proofs/<id>.json.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Provers working in parallel (processes, or Ray actors).")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", help="Ray cluster address (default: start a local Ray instance). Ray only.")
@click.option("--gpus-per-job", type=click.FloatRange(min=0), default=0,
              help="GPUs each Ray prover requests, so jobs run on GPU nodes. Ray only.")
@click.option("--cpus-per-job", type=click.FloatRange(min=0, min_open=True), default=1, show_default=True,
              help="CPUs each Ray prover requests. Ray only.")
@click.option("--threads-per-worker", type=click.IntRange(min=1),
              help="Cap each prover's threads (RAYON_NUM_THREADS; default: all cores).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT_S,
              show_default=True, help="Seconds a job may take; then its prover is killed and the job fails.")
@click.option("--retry-failed", is_flag=True,
              help="Queue failed jobs again (rows that are not valid inputs stay failed).")
@click.option("--no-pad", is_flag=True,
              help="Circuits proving K inferences at once: leave a last pack of fewer than K rows queued for a "
                   "later run instead of padding it with a repeat of its last row.")
def batch_cmd(circuit_dir, inputs_path, out_dir, workers, backend, address, gpus_per_job, cpus_per_job,
              threads_per_worker, timeout_s, retry_failed, no_pad):
    """Prove every row of INPUTS (JSONL or CSV); run it again to resume after a crash or Ctrl-C.

    Each row is one inference; a circuit built with --batch K proves K rows per proof.
    Exit 0 when every job is proved, 1 when some failed, 2 for usage errors, 130 when interrupted.
    """
    from .jobs import auto_progress, report, run_batch

    summary = run_batch(circuit_dir, inputs_path, out_dir, workers=workers, backend=backend, address=address,
                        gpus_per_job=gpus_per_job, cpus_per_job=cpus_per_job,
                        threads_per_worker=threads_per_worker, timeout_s=timeout_s, retry_failed=retry_failed,
                        progress=auto_progress(), pad=not no_pad)
    _echo_lines(report.summary_lines(summary))
    click.echo(report.summary_verdict(summary), err=summary.interrupted)
    if summary.exit_code:
        sys.exit(summary.exit_code)


@cli.group("jobs")
def jobs_group():
    """Inspect a batch's job store."""


@jobs_group.command("status")
@click.argument("out_dir", metavar="OUTDIR", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def jobs_status_cmd(out_dir, as_json):
    """Job counts, failures and throughput (safe while a batch runs)."""
    import json

    from .jobs import report

    st = report.status(out_dir)
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    _echo_lines(report.status_lines(st))


@jobs_group.command("export")
@click.argument("out_dir", metavar="OUTDIR", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option("--out", "dest", default="-", show_default=True, help="File to write ('-': stdout).")
def jobs_export_cmd(out_dir, fmt, dest):
    """Write id, label, outputs, proof path and slot of every proved job (one line per inference and label)."""
    from .jobs import export

    n = export(out_dir, fmt, dest)
    if dest != "-":
        click.echo(f"{n} rows written to {dest}", err=True)


@cli.command("demo")
@click.option("--work-dir", default="runs/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
def demo_cmd(work_dir, workers):
    """The main job end to end: circuit, batch proofs, local chain, gated rate updates, attacks refused."""
    from .demo import run_demo

    run_demo(work_dir, workers=workers, say=click.echo)


def main(argv=None):
    try:
        cli.main(args=argv, prog_name="zkinfer", standalone_mode=False)
    except ZkinferError as e:
        click.echo(f"error: {e.message}", err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if isinstance(e, click.UsageError) else e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    sys.exit(0)


if __name__ == "__main__":
    main()

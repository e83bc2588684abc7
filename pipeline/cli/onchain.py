"""The chain side: `zkinfer contracts`, `chain`, `deploy`, `post-features`, `withdraw-features`, `commitment`,
`salt`, `submit`, `breaker`, `audit`."""

from __future__ import annotations

import sys

import click

from .base import (
    DEPLOYMENTS_OPTION,
    PROOFS_TO_GATES,
    RPC_OPTION,
    SUBJECT_OPTION,
    VERIFIER_OPTION,
    cli,
    echo_json,
    echo_lines,
    rpc_url,
)


@cli.group()
def contracts():
    """Solidity: the project's contracts and circuits' verifiers (pinned solcjs, offline)."""


@contracts.command("build")
@click.argument("circuit_dir", metavar="[DIR]", required=False, type=click.Path(file_okay=False))
@VERIFIER_OPTION
@click.option("--reusable", is_flag=True, default=None, help="Same as --verifier reusable.")
def contracts_build(circuit_dir, verifier_mode, reusable):
    """Compile verifier_contracts/src, and DIR's verifier into DIR/evm when DIR is given."""
    from .. import evm

    mode = evm.verifier_mode(verifier_mode, reusable)
    for name, path in sorted(evm.build_contracts().items()):
        click.echo(f"{name:24s} {evm.load_artifact(path)['runtimeSize']:6d} B  {path}")
    if circuit_dir:
        echo_lines(evm.choose_verifier(circuit_dir, mode).summary_lines())


@cli.group("chain")
def chain_group():
    """A local anvil node (pinned npm package, Ethereum mainnet's limits)."""


@chain_group.command("up")
@click.option("--port", type=int, help="Port to listen on (default: a free one).")
def chain_up_cmd(port):
    """Start anvil in the background (or report the one running)."""
    from .. import chain

    node = chain.chain_up(port=port)
    click.echo(f"rpc: {node.rpc_url}  chain id: {node.chain_id}  pid: {node.pid}  log: {node.log_path}")


@chain_group.command("down")
def chain_down_cmd():
    """Stop the anvil started by `zkinfer chain up`."""
    from .. import chain

    node = chain.chain_down()
    click.echo(f"stopped anvil (pid {node.pid})" if node else "no local chain was running")


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
@click.option("--guardian", metavar="ADDRESS",
              help="The account that may suspend the model besides the owner (`zkinfer breaker suspend`); "
                   "default: the deployer; the zero address: none.")
@click.option("--min-posting-interval", type=click.IntRange(min=0), metavar="SECONDS",
              help="Seconds a subject's next posting waits once a proof acted on one (bounds how fast a "
                   "compromised publisher walks a rate). Default: 3600 for lending off chain 31337, else 0.")
@DEPLOYMENTS_OPTION
def deploy_cmd(circuit_dir, rpc, consumer, verifier_mode, reusable, allow_insecure_srs, max_feature_age,
               guardian, min_posting_interval, deployments_dir):
    """Deploy DIR's verifier, the registry and a gate; register the model."""
    from .. import chain, evm

    mode = evm.verifier_mode(verifier_mode, reusable)  # (a contradiction is a usage error before any RPC)
    d = chain.deploy(circuit_dir, rpc_url(rpc), consumer, verifier_mode=mode,
                     allow_insecure_srs=allow_insecure_srs, max_feature_age=max_feature_age,
                     guardian=guardian, min_posting_interval=min_posting_interval,
                     deployments_dir=deployments_dir)
    echo_json(d.summary())


@cli.command("post-features")
@PROOFS_TO_GATES
def post_features_cmd(proof_paths, rpc, subjects, deployments_dir):
    """As the feature publisher, post the features the proofs are about (demo and test convenience)."""
    from dataclasses import asdict

    from .. import chain

    postings = chain.post_features(list(proof_paths), rpc_url(rpc), subjects=list(subjects),
                                   deployments_dir=deployments_dir)
    echo_json([asdict(p) for p in postings])


@cli.command("withdraw-features")
@click.argument("circuit", metavar="CIRCUIT")
@RPC_OPTION
@SUBJECT_OPTION
@DEPLOYMENTS_OPTION
def withdraw_features_cmd(circuit, rpc, subjects, deployments_dir):
    """As a feature publisher, withdraw postings no proof acted on yet on CIRCUIT's gate (the circuit's name
    in the deployments file): the borrowers given with --subject, or the bond's current period."""
    from .. import chain

    echo_json(chain.withdraw_features(circuit, rpc_url(rpc), subjects=list(subjects), deployments_dir=deployments_dir))


@cli.command("commitment")
@click.argument("circuit_dir", metavar="DIR", type=click.Path(file_okay=False))
@click.argument("features", metavar="X1,X2,...")
@click.option("--salt", help="Hashed inputs: the subject's secret salt (0x and 32 hex digits), required.")
def commitment_cmd(circuit_dir, features, salt):
    """The feature commitment a publisher posts for one subject: Poseidon of the features and the
    subject's salt (hashed inputs) or keccak256 of the features (public inputs), quantized as the circuit
    quantizes them."""
    from .. import chain

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
    from ..blinding import new_salt

    for _ in range(count):
        click.echo(new_salt())


@cli.command("submit")
@PROOFS_TO_GATES
def submit_cmd(proof_paths, rpc, subjects, deployments_dir):
    """Send proofs to their circuits' gates; print each action's effect and gas."""
    from dataclasses import asdict

    from .. import chain

    results = chain.submit(list(proof_paths), rpc_url(rpc), subjects=list(subjects),
                           deployments_dir=deployments_dir)
    echo_json([asdict(r) for r in results])


@cli.group()
def breaker():
    """The model breaker: the guardian (or owner) suspends a circuit's model version on its gate at once; the
    owner resumes it. The key comes from ZKINFER_PRIVATE_KEY (anvil's dev account on chain 31337)."""


CIRCUIT_ARGUMENT = click.argument("circuit", metavar="CIRCUIT")


@breaker.command("suspend")
@CIRCUIT_ARGUMENT
@RPC_OPTION
@DEPLOYMENTS_OPTION
def breaker_suspend_cmd(circuit, rpc, deployments_dir):
    """As the guardian or owner, suspend CIRCUIT's model (the circuit's name in the deployments file): its
    gate refuses its proofs (ModelSuspended) until resumed. Prints the transaction hash."""
    from .. import chain

    click.echo(chain.suspend_model(circuit, rpc_url(rpc), deployments_dir=deployments_dir))


@breaker.command("resume")
@CIRCUIT_ARGUMENT
@RPC_OPTION
@DEPLOYMENTS_OPTION
def breaker_resume_cmd(circuit, rpc, deployments_dir):
    """As the gate's owner, lift the suspension of CIRCUIT's model. Prints the transaction hash."""
    from .. import chain

    click.echo(chain.resume_model(circuit, rpc_url(rpc), deployments_dir=deployments_dir))


@breaker.command("status")
@CIRCUIT_ARGUMENT
@RPC_OPTION
@DEPLOYMENTS_OPTION
def breaker_status_cmd(circuit, rpc, deployments_dir):
    """Whether CIRCUIT's model is suspended, who the guardian and owner are, and the posting interval."""
    from .. import chain

    echo_json(chain.breaker_status(circuit, rpc_url(rpc), deployments_dir=deployments_dir).summary())


@breaker.command("set-guardian")
@CIRCUIT_ARGUMENT
@click.argument("guardian", metavar="ADDRESS")
@RPC_OPTION
@DEPLOYMENTS_OPTION
def breaker_set_guardian_cmd(circuit, guardian, rpc, deployments_dir):
    """As the gate's owner, make ADDRESS CIRCUIT's gate's guardian (the zero address: none). Prints the
    transaction hash."""
    from .. import chain

    click.echo(chain.set_guardian(circuit, guardian, rpc_url(rpc), deployments_dir=deployments_dir))


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
    from .. import audit

    if list_events:
        click.echo(audit.events_text(audit.events(rpc_url(rpc), deployments=deployments, registry=registry,
                                                  model_id=model_id)))
        return
    if not artifacts_dir:
        raise click.UsageError("give the published ARTIFACTS folder (or --events)")
    report = audit.audit(artifacts_dir, rpc_url(rpc), deployments=deployments, registry=registry,
                         model_id=model_id, srs=srs_path)
    click.echo(report.text())
    sys.exit(report.exit_code)

"""The `zkinfer` command line: a thin click layer. Each command calls one library function.

User mistakes raise `ZkinferError`; `main` prints its one-line message and exits with its code
(2 for usage errors), never a traceback.
"""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import ZkinferError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zkinfer")
def cli():
    """zkinfer: provable ML inference for smart contracts (ONNX -> Halo2/KZG with ezkl -> Solidity)."""


def _echo_json(obj) -> None:
    import json

    click.echo(json.dumps(obj, indent=2, default=str))


# ---------------------------------------------------------------------------------------------------------
# Contracts and chain


@cli.group()
def contracts():
    """Solidity: the project's contracts and circuits' verifiers (pinned solcjs, offline)."""


@contracts.command("build")
@click.argument("circuit_dir", metavar="[DIR]", required=False, type=click.Path(file_okay=False))
@click.option("--reusable", is_flag=True,
              help="Render ezkl's reusable verifier and this circuit's verifying-key artifact instead.")
def contracts_build(circuit_dir, reusable):
    """Compile verifier_contracts/src, and DIR's verifier into DIR/evm when DIR is given."""
    from . import evm

    for name, path in sorted(evm.build_contracts().items()):
        click.echo(f"{name:24s} {evm.load_artifact(path)['runtimeSize']:6d} B  {path}")
    if circuit_dir:
        vb = evm.build_verifier(circuit_dir, reusable=reusable)
        fits = "over EIP-170's limit" if vb.exceeds_eip170 else "fits EIP-170"
        click.echo(f"{vb.contract_name:24s} {vb.runtime_size:6d} B  {vb.artifact_path} ({fits})")
        if vb.vka_path:
            click.echo(f"{'VKA':24s} {vb.vka_digest}  {vb.vka_path}")


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
@click.option("--reusable/--no-reusable", default=None,
              help="Force ezkl's reusable verifier on or off (default: when the verifier exceeds EIP-170).")
@click.option("--allow-insecure-srs", is_flag=True,
              help="Deploy a dev-SRS circuit to a chain other than 31337.")
@click.option("--max-feature-age", type=int, default=24 * 3600, show_default=True,
              help="Seconds posted features stay usable.")
@DEPLOYMENTS_OPTION
def deploy_cmd(circuit_dir, rpc, consumer, reusable, allow_insecure_srs, max_feature_age, deployments_dir):
    """Deploy DIR's verifier, the registry and a gate; register the model."""
    from . import chain

    d = chain.deploy(circuit_dir, _rpc(rpc), consumer, reusable=reusable,
                     allow_insecure_srs=allow_insecure_srs, max_feature_age=max_feature_age,
                     deployments_dir=deployments_dir)
    _echo_json({"chainId": d.chain_id, "circuit": d.circuit, "modelId": d.model_id,
                "registry": d.registry_address, "verifier": d.verifier.address, "gate": d.gate.address,
                "gas": d.gas(), "deployments": str(d.deployments_file)})


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

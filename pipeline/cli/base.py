"""The root `zkinfer` group and what the command modules share: option groups and output helpers."""

from __future__ import annotations

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zkinfer")
def cli():
    """zkinfer: provable ML inference for smart contracts (ONNX -> Halo2/KZG with ezkl -> Solidity)."""


def progress(msg: str) -> None:
    click.echo(msg, err=True)


def all_of(options: list):
    """One decorator applying several click options, in the order listed."""
    def apply(f):
        for opt in reversed(options):
            f = opt(f)
        return f
    return apply


visibility_options = all_of([
    click.option("--input-visibility", type=click.Choice(["public", "private", "hashed"]), default="public",
                 show_default=True, help="public: inputs are proof instances; hashed: only their Poseidon hash is."),
    click.option("--output-visibility", type=click.Choice(["public", "private", "hashed"]), default="public",
                 show_default=True),
    click.option("--param-visibility", type=click.Choice(["fixed", "private", "hashed"]), default="fixed",
                 show_default=True, help="fixed: weights baked into the keys; hashed: a public weight commitment."),
])
layout_options = all_of([
    click.option("--num-inner-cols", type=int, help="Advanced: advice columns per operation (ezkl default 2)."),
    click.option("--decomp-base", type=int, help="Advanced: range-check decomposition base (ezkl default 16384)."),
    click.option("--decomp-legs", type=int, help="Advanced: range-check decomposition legs (ezkl default 2)."),
])


def circuit_args(num_inner_cols, decomp_base, decomp_legs):
    from ..compile import CircuitArgs

    return CircuitArgs(num_inner_cols=num_inner_cols, decomp_base=decomp_base, decomp_legs=decomp_legs)


def echo_lines(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


def echo_json(obj) -> None:
    import json

    click.echo(json.dumps(obj, indent=2, default=str))


VERIFIER_OPTION = click.option(
    "--verifier", "verifier_mode", type=click.Choice(["auto", "standard", "split-vk", "reusable"]), default="auto",
    show_default=True,
    help="auto: the first that fits EIP-170's 24,576-byte code limit, in this order. standard: ezkl's verifier, "
         "the verifying key in its code. split-vk: the key in a data contract, checked by keccak256 (~3k gas "
         "more per proof). reusable: ezkl's shared verifier plus this circuit's key artifact (~30% more gas).")


def rpc_url(rpc: str | None) -> str:
    """--rpc, or the local chain `zkinfer chain up` started."""
    from .. import chain
    from ..errors import UsageError

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

# `post-features` and `submit`: proof files sent to their circuits' gates.
PROOFS_TO_GATES = all_of([
    click.argument("proof_paths", metavar="PROOF.json...", nargs=-1, required=True, type=click.Path(dir_okay=False)),
    RPC_OPTION, SUBJECT_OPTION, DEPLOYMENTS_OPTION,
])

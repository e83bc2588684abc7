"""The `zkinfer` command line: a thin click layer. Each command calls one library function.

User mistakes raise `ZkinferError`; `main` prints its one-line message and exits with its code
(2 for usage errors), never a traceback.

    base        the root group and the option groups and output helpers the commands share
    circuits    circuit build / estimate / zoo / list, export
    proving     prove, verify, batch, jobs
    onchain     contracts, chain, deploy, post-features, withdraw-features, commitment, salt, submit,
                breaker, audit
    serving     serve (the prover node) and serve status
    tools       bench, reliability, demo, node-demo
    monitoring  monitor
"""

from __future__ import annotations

import sys

import click

from ..errors import ZkinferError
from . import circuits, monitoring, onchain, proving, serving, tools  # noqa: F401 (each registers its commands on `cli`)
from .base import cli

__all__ = ["cli", "main"]


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


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

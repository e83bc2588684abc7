"""The pinned npm toolchain: solcjs (the Solidity compiler) and anvil (the local node).

Both come from package.json's pinned packages in node_modules (`make install`; $ZKINFER_NODE_MODULES points
elsewhere), never from a download: compiling and running a chain work offline. `pipeline.evm.solidity`
compiles with solcjs; `pipeline.chain.node` runs anvil.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import UsageError, ZkinferError

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES_ENV = "ZKINFER_NODE_MODULES"
SOLC_TIMEOUT_S = 300


class SolidityCompileError(ZkinferError):
    """solc reported errors (the message carries the first one)."""

    exit_code = 1


def node_modules() -> Path:
    """The npm toolchain's node_modules: $ZKINFER_NODE_MODULES, else the repository root's."""
    configured = os.environ.get(NODE_MODULES_ENV)
    d = Path(configured) if configured else REPO_ROOT / "node_modules"
    if not (d / ".bin" / "solcjs").exists():
        where = f"${NODE_MODULES_ENV}={configured}" if configured else str(d)
        raise UsageError(f"the EVM toolchain (npm solc, anvil) is not installed at {where}: "
                         "run `make install`")
    return d


def npm_binary(name: str) -> Path:
    """A binary from the pinned npm packages (`solcjs`, `anvil`, `forge`)."""
    p = node_modules() / ".bin" / name
    if not p.exists():
        raise UsageError(f"{name} not found in {p.parent}: run `make install`")
    return p


def run_solcjs(args: list[str], stdin: str | None = None, cwd: Path | None = None) -> str:
    if shutil.which("node") is None:
        raise UsageError("node (Node.js) is not on PATH: solcjs needs it; install Node.js 18+, "
                         "then `make install`")
    # Regular files, not pipes, on both ends: solcjs reads stdin with readFileSync, which fails with EAGAIN on
    # a pipe that is not ready yet, and exits with process.exit(), which cuts writes to a pipe at 64 KiB.
    with tempfile.TemporaryFile("w+") as stdin_file, tempfile.TemporaryFile("w+") as stdout_file:
        stdin_file.write(stdin or "")
        stdin_file.seek(0)
        try:
            done = subprocess.run([str(npm_binary("solcjs")), *args], stdin=stdin_file, stdout=stdout_file,
                                  stderr=subprocess.PIPE, text=True, cwd=cwd, timeout=SOLC_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise SolidityCompileError(f"solcjs took more than {SOLC_TIMEOUT_S} s") from None
        stdout_file.seek(0)
        stdout = stdout_file.read()
    if done.returncode != 0:
        last = (done.stderr.strip() or stdout.strip() or "no output").splitlines()[-1]
        raise SolidityCompileError(f"solcjs failed (exit {done.returncode}): {last}")
    return stdout


_solc_version_cache: dict[Path, str] = {}


def solc_version() -> str:
    """The pinned compiler's full version, e.g. ``0.8.37+commit.a4ac2ab1.Emscripten.clang``."""
    binary = npm_binary("solcjs")
    if binary not in _solc_version_cache:
        _solc_version_cache[binary] = run_solcjs(["--version"]).strip().splitlines()[-1]
    return _solc_version_cache[binary]


def openzeppelin_version() -> str:
    pkg = node_modules() / "@openzeppelin" / "contracts" / "package.json"
    try:
        return json.loads(pkg.read_text())["version"]
    except (OSError, KeyError, json.JSONDecodeError):
        raise UsageError(f"@openzeppelin/contracts is not installed ({pkg} missing): "
                         "run `make install`") from None

"""The local node: an anvil from the pinned npm package, started in the background and stopped from any process.

    node = chain_up()          # or the one already running
    node.rpc_url               # http://127.0.0.1:<port>
    chain_down()

The node keeps Ethereum mainnet's limits: EIP-170's code-size limit and EIP-7825's per-transaction gas cap
stay on, so whatever deploys here deploys on Ethereum. Its pid, port and RPC URL live in a small state file
(`.zkinfer/anvil.json`, or under $ZKINFER_STATE_DIR) so another process can stop it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..artifacts import read_json, write_json_atomic
from ..errors import ChainError
from ..evm.toolchain import npm_binary

LOCAL_CHAIN_ID = 31337
STATE_DIR_ENV = "ZKINFER_STATE_DIR"
DEFAULT_STATE_DIR = Path(".zkinfer")
ANVIL_START_TIMEOUT_S = 30


@dataclass(frozen=True)
class LocalChain:
    """A running anvil started by `chain_up`."""

    pid: int
    port: int
    rpc_url: str
    chain_id: int
    log_path: str
    anvil: str

    @property
    def alive(self) -> bool:
        return _is_our_anvil(self.pid, self.anvil)


def state_dir(configured: str | os.PathLike | None = None) -> Path:
    return Path(configured or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


def _state_file(d: str | os.PathLike | None) -> Path:
    return state_dir(d) / "anvil.json"


def _is_our_anvil(pid: int, anvil: str) -> bool:
    """True if `pid` runs the anvil we started (pids are reused: never signal a stranger)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(cmdline) and cmdline[0].decode(errors="replace") == anvil


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recorded(state: str | os.PathLike | None) -> LocalChain | None:
    """The node the state file records, running or not."""
    f = _state_file(state)
    return LocalChain(**read_json(f, "anvil state file")) if f.exists() else None


def local_chain(state: str | os.PathLike | None = None) -> LocalChain | None:
    """The node `chain_up` started, if it is still running."""
    node = _recorded(state)
    return node if node is not None and node.alive else None


def chain_up(port: int | None = None, chain_id: int = LOCAL_CHAIN_ID,
             state: str | os.PathLike | None = None) -> LocalChain:
    """Start anvil in the background (or return the one already running) and wait until it answers.

    The node outlives this process; `chain_down` stops it. Limits stay at mainnet's: no code-size or gas
    overrides, and EIP-7825's transaction gas cap switched on.
    """
    running = local_chain(state)
    if running is not None:
        return running
    anvil = str(npm_binary("anvil"))
    port = port or _free_port()
    d = state_dir(state)
    d.mkdir(parents=True, exist_ok=True)
    log_path = d / f"anvil-{port}.log"
    cmd = [anvil, "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(chain_id),
           "--enable-tx-gas-limit"]
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    node = LocalChain(pid=proc.pid, port=port, rpc_url=f"http://127.0.0.1:{port}", chain_id=chain_id,
                      log_path=str(log_path), anvil=anvil)
    deadline = time.monotonic() + ANVIL_START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise ChainError(f"anvil exited at start (code {proc.returncode}): {tail[0]} (log: {log_path})")
        if _rpc_answers(node.rpc_url):
            break
        if time.monotonic() > deadline:
            _terminate(proc.pid)
            raise ChainError(f"anvil did not answer on {node.rpc_url} within {ANVIL_START_TIMEOUT_S} s "
                             f"(log: {log_path})")
        time.sleep(0.05)
    write_json_atomic(_state_file(state), asdict(node))
    return node


def chain_down(state: str | os.PathLike | None = None) -> LocalChain | None:
    """Stop the node `chain_up` started (from any process); returns it, or None if none was running."""
    node = _recorded(state)
    if node is None:
        return None
    if node.alive:
        _terminate(node.pid)
    _state_file(state).unlink(missing_ok=True)
    return node


def _terminate(pid: int, grace_s: float = 5.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            # Reap it if it is our child; otherwise wait until it has exited (a zombie waiting for its
            # parent to reap it has exited too).
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            if not _running(pid):
                return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _rpc_answers(rpc_url: str) -> bool:
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    req = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=1) as r:
            return b"result" in r.read()
    except OSError:
        return False

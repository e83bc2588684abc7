"""The chain: a local anvil node, deployments, feature posting and proof submission (web3.py).

    node = chain_up()                                        # anvil from the pinned npm package
    d = deploy("circuits/credit_risk", node.rpc_url, consumer="lending")
    post_features(node.rpc_url, "proof.json", subjects=[borrower])    # the oracle's part
    [s] = submit(["proof.json"], node.rpc_url, subjects=[borrower])  # s.effects: the new rate
    chain_down()

The local node keeps Ethereum mainnet's limits: EIP-170's code-size limit and EIP-7825's per-transaction
gas cap stay on, so whatever deploys here deploys on Ethereum. Its pid, port and RPC URL live in a small
state file (`.zkinfer/anvil.json`, or under $ZKINFER_STATE_DIR) so another process can stop it.

Keys: $ZKINFER_PRIVATE_KEY signs every transaction; without it, only a local chain (chain id 31337) is
used, with anvil's unlocked dev accounts. A key is never printed or logged.

Deployments are recorded in ``deployments/<chainId>.json`` (schema ``zkinfer/deployments@1``): every
contract by name (``ModelRegistry``, ``<circuit>/Halo2Verifier``, ``<circuit>/RiskAdjustedLending``, ...)
with address, transaction hash, block, gas used, constructor arguments and its ABI artifact's path (for a
split-vk verifier's ``<circuit>/Halo2VerifierVkData``, which has no ABI: its ``vk_data.json``), and every
circuit's model id, manifest hash, verifier mode and the names of its verifier and gate.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from eth_utils.abi import abi_to_signature, collapse_if_tuple

from . import evm
from . import layout as layout_mod
from . import manifest as manifest_mod
from .artifacts import read_json, sha256_file, write_json_atomic
from .errors import ChainError, UsageError
from .felt import felt_to_uint256
from .layout import slot_commitments

log = logging.getLogger(__name__)

LOCAL_CHAIN_ID = 31337
STATE_DIR_ENV = "ZKINFER_STATE_DIR"
DEFAULT_STATE_DIR = Path(".zkinfer")
PRIVATE_KEY_ENV = "ZKINFER_PRIVATE_KEY"
DEPLOYMENTS_SCHEMA = "zkinfer/deployments@1"
DEFAULT_DEPLOYMENTS_DIR = Path("deployments")
ANVIL_START_TIMEOUT_S = 30
RPC_TIMEOUT_S = 30
RECEIPT_TIMEOUT_S = 120

CONSUMERS = {"lending": "RiskAdjustedLending", "bond": "AdaptiveCouponBond"}
# Gates' default terms. Rates and coupons in basis points; thresholds in the model's output units (the
# inflation_forecast model predicts percent); ages and periods in seconds.
DEFAULT_MAX_FEATURE_AGE_S = 24 * 3600
DEFAULT_LENDING_TERMS = {"baseRateBps": 200, "slopeBps": 1500, "maxRateStepBps": 300, "initialRateBps": 800}
DEFAULT_BOND_TERMS = {"initialCouponBps": 400, "floorBps": 200, "capBps": 800, "stepBps": 25,
                      "raiseAbove": 3.0, "cutBelow": 2.0, "periodLength": 90 * 24 * 3600}
OUTPUT_DECIMALS = 18  # InferenceGate.OUTPUT_DECIMALS
# The standard errors every contract may revert with besides its own.
_STANDARD_ERRORS = [
    {"type": "error", "name": "Error", "inputs": [{"type": "string", "name": "message"}]},
    {"type": "error", "name": "Panic", "inputs": [{"type": "uint256", "name": "code"}]},
]


class ContractRevertError(ChainError):
    """A call or transaction reverted; `error_name` and `error_args` hold the decoded custom error."""

    def __init__(self, what: str, error_name: str | None, error_args: dict | None = None, raw: str = ""):
        if error_name:
            args = ", ".join(f"{k}={v}" for k, v in (error_args or {}).items())
            detail = f"{error_name}({args})"
        else:
            detail = f"reverted without a known error (data {raw or '0x'})"
        super().__init__(f"{what} reverted: {detail}")
        self.error_name = error_name
        self.error_args = error_args or {}


# ---------------------------------------------------------------------------------------------------------
# Local node


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


def local_chain(state: str | os.PathLike | None = None) -> LocalChain | None:
    """The node `chain_up` started, if it is still running."""
    f = _state_file(state)
    if not f.exists():
        return None
    node = LocalChain(**read_json(f, "anvil state file"))
    return node if node.alive else None


def chain_up(port: int | None = None, chain_id: int = LOCAL_CHAIN_ID,
             state: str | os.PathLike | None = None) -> LocalChain:
    """Start anvil in the background (or return the one already running) and wait until it answers.

    The node outlives this process; `chain_down` stops it. Limits stay at mainnet's: no code-size or gas
    overrides, and EIP-7825's transaction gas cap switched on.
    """
    running = local_chain(state)
    if running is not None:
        return running
    anvil = str(evm.npm_binary("anvil"))
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
    f = _state_file(state)
    if not f.exists():
        return None
    node = LocalChain(**read_json(f, "anvil state file"))
    if node.alive:
        _terminate(node.pid)
    f.unlink(missing_ok=True)
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


# ---------------------------------------------------------------------------------------------------------
# Connection, accounts, transactions


class RevertDecoder:
    """Turns revert data into the custom error's name and arguments, from every known ABI."""

    def __init__(self, abis: list[list[dict]]):
        self._errors: dict[bytes, dict] = {}
        for abi in [*abis, _STANDARD_ERRORS]:
            for item in abi:
                if item.get("type") == "error":
                    self._errors[keccak(text=abi_to_signature(item))[:4]] = item

    def decode(self, data: bytes) -> tuple[str, dict] | None:
        item = self._errors.get(data[:4])
        if item is None:
            return None
        types = [collapse_if_tuple(i) for i in item["inputs"]]
        try:
            values = abi_decode(types, data[4:])
        except Exception:  # malformed revert data: report it undecoded rather than fail differently
            return None
        names = [i.get("name") or f"arg{n}" for n, i in enumerate(item["inputs"])]
        return item["name"], {n: _display(v) for n, v in zip(names, values, strict=True)}


def _display(value):
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    if isinstance(value, tuple | list):
        return [_display(v) for v in value]
    return value


def _revert_data(e: Exception) -> bytes | None:
    data = getattr(e, "data", None)
    if isinstance(data, dict):  # some providers nest it
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


class Chain:
    """A connection to one chain with a signing account, the project's ABIs and revert decoding."""

    def __init__(self, rpc_url: str, private_key: str | None = None):
        from web3 import HTTPProvider, Web3

        self.rpc_url = rpc_url
        self.w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": RPC_TIMEOUT_S}))
        try:
            self.chain_id = self.w3.eth.chain_id
        except Exception as e:
            raise ChainError(f"cannot reach the RPC endpoint {rpc_url}: {_first_line(e)}") from None
        self._signer = self._install_signer(private_key if private_key is not None
                                            else os.environ.get(PRIVATE_KEY_ENV))

    def _install_signer(self, key: str | None) -> str | None:
        """Sign every transaction with `key` (kept only inside web3's signing middleware)."""
        if not key:
            return None
        from eth_account import Account
        from web3.middleware import SignAndSendRawMiddlewareBuilder

        try:
            acct = Account.from_key(key)
        except Exception:
            # Never echo the key (or a fragment of it) back.
            raise UsageError(f"{PRIVATE_KEY_ENV} is not a valid private key (32 bytes, hex)") from None
        self.w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(acct), layer=0)
        self.w3.eth.default_account = acct.address
        return acct.address

    @cached_property
    def account(self) -> str:
        """The sending account: the key's, or on a local chain anvil's first dev account. Resolved on first
        use, so checks that need no account (the chain id) come first."""
        if self._signer:
            return self._signer
        if self.chain_id != LOCAL_CHAIN_ID:
            raise UsageError(f"chain {self.chain_id} at {self.rpc_url} is not a local dev chain: "
                             f"set {PRIVATE_KEY_ENV} to the deployer's private key")
        accounts = self.w3.eth.accounts
        if not accounts:
            raise ChainError(f"the local chain at {self.rpc_url} has no unlocked dev accounts")
        self.w3.eth.default_account = accounts[0]
        return accounts[0]

    def decoder(self) -> RevertDecoder:
        return RevertDecoder([evm.load_artifact(p)["abi"] for p in evm.build_contracts().values()])

    def contract(self, address: str, abi: list):
        return self.w3.eth.contract(address=to_checksum_address(address), abi=abi)

    def _reverted(self, what: str, e: Exception) -> ChainError:
        data = _revert_data(e)
        if data:
            decoded = self.decoder().decode(data)
            if decoded:
                return ContractRevertError(what, *decoded)
            return ContractRevertError(what, None, raw="0x" + data.hex())
        return ChainError(f"{what} failed: {_first_line(e)}")

    def call(self, fn, what: str):
        """A read-only call; a revert becomes a ContractRevertError naming the custom error."""
        from web3.exceptions import ContractLogicError

        try:
            return fn.call()
        except ContractLogicError as e:
            raise self._reverted(what, e) from None

    def transact(self, fn, what: str, sender: str | None = None):
        """Send a transaction and wait for its receipt; a revert becomes a ContractRevertError.

        `sender` picks another unlocked account (local dev chains only).
        """
        params = {"from": sender or self.account}
        return self._send(lambda: fn.transact(params), what)

    def _send(self, send, what: str):
        """Run `send()` (which sends one transaction and returns its hash) and wait for the receipt."""
        from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError

        try:
            tx_hash = send()
        except ContractLogicError as e:
            raise self._reverted(what, e) from None
        except Web3RPCError as e:  # refused by the node: code size, gas cap, funds, nonce
            raise ChainError(f"{what} failed: {_rpc_message(e)}") from None
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
        except TimeExhausted:
            raise ChainError(f"{what}: no receipt for {tx_hash.hex()} after {RECEIPT_TIMEOUT_S} s") from None
        if receipt.status != 1:
            raise ChainError(f"{what}: transaction {tx_hash.hex()} failed (status 0, "
                             f"gas used {receipt.gasUsed})")
        return receipt

    def deploy(self, artifact: dict, args: list, what: str | None = None) -> DeployedContract:
        """Deploy a compiled contract; returns where it went and what it cost."""
        name = artifact["contractName"]
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = self.transact(factory.constructor(*args), what or f"deploying {name}")
        return DeployedContract(contract_name=name, address=receipt.contractAddress,
                                transaction_hash="0x" + bytes(receipt.transactionHash).hex(),
                                block_number=receipt.blockNumber, gas_used=receipt.gasUsed,
                                args=_jsonable(args))

    def deploy_code(self, initcode: bytes, name: str, what: str | None = None) -> DeployedContract:
        """Deploy raw init code (a contract-creation transaction with no ABI): e.g. a data contract."""
        tx = {"from": self.account, "data": "0x" + initcode.hex()}
        receipt = self._send(lambda: self.w3.eth.send_transaction(tx), what or f"deploying {name}")
        return DeployedContract(contract_name=name, address=receipt.contractAddress,
                                transaction_hash="0x" + bytes(receipt.transactionHash).hex(),
                                block_number=receipt.blockNumber, gas_used=receipt.gasUsed)

    def code(self, address: str) -> bytes:
        return bytes(self.w3.eth.get_code(to_checksum_address(address)))

    def has_code(self, address: str) -> bool:
        return len(self.code(address)) > 0

    def latest_timestamp(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]


def _rpc_message(e: Exception) -> str:
    response = getattr(e, "rpc_response", None) or {}
    error = response.get("error") if isinstance(response, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return _first_line(e)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _jsonable(value):
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------------------
# Deployments file


@dataclass(frozen=True)
class DeployedContract:
    contract_name: str
    address: str
    transaction_hash: str
    block_number: int
    gas_used: int
    args: list = field(default_factory=list)

    def record(self, artifact_path: Path, base: Path) -> dict:
        return {"contractName": self.contract_name, "address": self.address,
                "transactionHash": self.transaction_hash, "blockNumber": self.block_number,
                "gasUsed": self.gas_used, "args": self.args, "artifact": _relative(artifact_path, base)}


def _relative(path: Path, base: Path) -> str:
    return os.path.relpath(Path(path).resolve(), base.resolve())


def deployments_path(chain_id: int, deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR) -> Path:
    return Path(deployments_dir) / f"{chain_id}.json"


def _empty_deployments(chain_id: int) -> dict:
    return {"schema": DEPLOYMENTS_SCHEMA, "chainId": chain_id, "contracts": {}, "models": {}}


def load_deployments(chain_id: int, deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR) -> dict:
    """The chain's deployments file, or an empty one."""
    p = deployments_path(chain_id, deployments_dir)
    if not p.exists():
        return _empty_deployments(chain_id)
    data = read_json(p, "deployments file")
    same_chain = isinstance(data, dict) and data.get("chainId") == chain_id
    if not same_chain or data.get("schema") != DEPLOYMENTS_SCHEMA:
        raise UsageError(f"{p} is not a zkinfer deployments file for chain {chain_id}")
    return data


# ---------------------------------------------------------------------------------------------------------
# Deploy


@dataclass(frozen=True)
class Deployment:
    """What `deploy` put on chain for one circuit."""

    chain_id: int
    circuit: str
    model_id: int
    consumer: str
    registry: DeployedContract | None  # None: an existing registry was reused
    verifier: DeployedContract
    gate: DeployedContract
    reusable_verifier: DeployedContract | None  # the shared verifier, when this deploy created it
    registry_address: str
    deployments_file: Path
    register_gas: int
    verifier_runtime_size: int
    instance_layout: dict  # InstanceLayout's fields, as registered
    verifier_mode: str = evm.VerifierMode.STANDARD.value  # standard, split-vk or reusable
    vk_data: DeployedContract | None = None  # split-vk: the verifying key's data contract

    def gas(self) -> dict[str, int]:
        """Gas of each transaction this deployment sent (for benchmarks)."""
        out = {"register_model": self.register_gas, "deploy_verifier": self.verifier.gas_used,
               "deploy_gate": self.gate.gas_used}
        if self.registry is not None:
            out["deploy_registry"] = self.registry.gas_used
        if self.reusable_verifier is not None:
            out["deploy_reusable_verifier"] = self.reusable_verifier.gas_used
        if self.vk_data is not None:
            out["deploy_vk_data"] = self.vk_data.gas_used
        return out


def _output_scale(manifest: manifest_mod.Manifest) -> int:
    scales = set(manifest.circuit["output_scales"])
    if len(scales) != 1:
        raise UsageError(f"{manifest.name}: outputs with different scales {sorted(scales)} are not supported")
    return scales.pop()


def _to_fixed(value: float) -> int:
    """A threshold in model units as the gates' integers with OUTPUT_DECIMALS decimals."""
    from decimal import Decimal

    return int(Decimal(str(value)) * (10 ** OUTPUT_DECIMALS))


def _gate_args(chain: Chain, consumer: str, registry: str, max_feature_age: int, terms: dict | None) -> list:
    if consumer == "lending":
        t = {**DEFAULT_LENDING_TERMS, **(terms or {})}
        struct = (t["baseRateBps"], t["slopeBps"], t["maxRateStepBps"], t["initialRateBps"])
    else:
        t = {**DEFAULT_BOND_TERMS, **(terms or {})}
        start = t.get("startTime") or chain.latest_timestamp()
        struct = (t["initialCouponBps"], t["floorBps"], t["capBps"], t["stepBps"], _to_fixed(t["raiseAbove"]),
                  _to_fixed(t["cutBelow"]), start, t["periodLength"])
    return [registry, chain.account, max_feature_age, struct]


def deploy(circuit_dir: str | os.PathLike, rpc_url: str, consumer: str = "lending", *,
           verifier_mode: evm.VerifierMode | str | None = None, reusable: bool | None = None,
           allow_insecure_srs: bool = False,
           deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR, terms: dict | None = None,
           max_feature_age: int = DEFAULT_MAX_FEATURE_AGE_S, output_index: int = 0,
           feature_publisher: str | None = None, weight_commitment: str | None = None,
           private_key: str | None = None) -> Deployment:
    """Deploy a circuit's verifier, the registry (reused when the chain has one), and a consumer gate;
    register the model, accept it on the gate, allow the feature publisher; record it all in
    ``deployments/<chainId>.json``.

    `verifier_mode`: None (or "auto") picks the first verifier whose runtime code fits EIP-170 (see
    `evm.choose_verifier`): the standard one; else split-vk, its verifying key in a data contract deployed
    first; else ezkl's reusable verifier (shared per chain) with this circuit's VKA. "standard", "split-vk"
    or "reusable" forces one (`reusable`, the older switch: True reusable, False standard). Whichever it is,
    the registry records the contract offering `verifyProof(bytes, uint256[])`: the gates need no change.
    A circuit built on a dev (insecure) SRS is refused on any chain
    but 31337 unless `allow_insecure_srs`: whoever generated that SRS can forge its proofs.
    `feature_publisher` defaults to the deployer. `weight_commitment` (hex; circuits with hashed weights
    only) defaults to the circuit's own (`params_commitment`).
    """
    if consumer not in CONSUMERS:
        raise UsageError(f"unknown consumer {consumer!r}: choose one of {', '.join(CONSUMERS)}")
    mode = evm.verifier_mode(verifier_mode, reusable)
    m = manifest_mod.load(circuit_dir)
    manifest_mod.verify_artifacts(m, manifest_mod.VERIFY_FILES)
    chain = Chain(rpc_url, private_key)
    if m.insecure_srs and chain.chain_id != LOCAL_CHAIN_ID and not allow_insecure_srs:
        raise ChainError(f"refusing to deploy {m.name} to chain {chain.chain_id}: it was built with a dev "
                         f"SRS ({m.srs.get('origin', 'insecure')}), so anyone holding that SRS's secret can "
                         "forge proofs; rebuild it with a ceremony SRS, or pass --allow-insecure-srs for a "
                         "test network")
    slots, hashed, inputs_per_slot, outputs_per_slot, param_hashes = layout = layout_mod.registry_layout(m)
    if consumer == "bond" and slots != 1:
        raise UsageError(f"{m.name} proves {slots} inferences at once; the bond acts on one per period")
    if param_hashes and not weight_commitment:
        weight_commitment = params_commitment(m.dir)

    dfile = deployments_path(chain.chain_id, deployments_dir)
    book = load_deployments(chain.chain_id, deployments_dir)
    base = dfile.parent.parent
    registry_record = book["contracts"].get("ModelRegistry")
    if registry_record and not chain.has_code(registry_record["address"]):
        # A restarted local node (or a record from another network): nothing recorded is there any more.
        log.info("%s: recorded registry %s has no code on chain %d; starting a fresh deployments record",
                 dfile, registry_record["address"], chain.chain_id)
        book = _empty_deployments(chain.chain_id)
        registry_record = None

    contract_paths = evm.build_contracts()
    artifacts = {n: evm.load_artifact(p) for n, p in contract_paths.items()}
    v = _deploy_verifier(chain, m, mode, book, base)
    verifier = v.verifier

    registry = None
    if registry_record is None:
        registry = chain.deploy(artifacts["ModelRegistry"], [chain.account])
        book["contracts"]["ModelRegistry"] = registry.record(contract_paths["ModelRegistry"], base)
        registry_address = registry.address
    else:
        registry_address = registry_record["address"]
    vk_sha256 = sha256_file(m.artifact(manifest_mod.VK))
    reg = chain.contract(registry_address, artifacts["ModelRegistry"]["abi"])
    receipt = chain.transact(
        reg.functions.register(verifier.address, bytes.fromhex(vk_sha256),
                               bytes.fromhex(m.sha256), _output_scale(m), layout,
                               bytes.fromhex(weight_commitment[2:]) if weight_commitment else bytes(32)),
        f"registering {m.name}")
    model_id = reg.events.ModelRegistered().process_receipt(receipt)[0]["args"]["modelId"]

    gate_name = CONSUMERS[consumer]
    gate = chain.deploy(artifacts[gate_name],
                        _gate_args(chain, consumer, registry_address, max_feature_age, terms))
    book["contracts"][f"{m.name}/{gate_name}"] = gate.record(contract_paths[gate_name], base)
    g = chain.contract(gate.address, artifacts[gate_name]["abi"])
    chain.transact(g.functions.acceptModel(model_id, output_index),
                   f"accepting model {model_id} on {gate_name}")
    chain.transact(g.functions.setFeaturePublisher(feature_publisher or chain.account, True),
                   "allowing the feature publisher")

    layout_fields = {"slots": slots, "hashedInputs": hashed, "inputsPerSlot": inputs_per_slot,
                     "outputsPerSlot": outputs_per_slot, "paramHashes": param_hashes}
    book["models"][m.name] = {
        "modelId": model_id, "manifestSha256": m.sha256, "vkSha256": vk_sha256,
        "consumer": consumer, "registry": "ModelRegistry", "verifier": f"{m.name}/{verifier.contract_name}",
        "gate": f"{m.name}/{gate_name}", "insecureSrs": m.insecure_srs, "instanceLayout": layout_fields,
        "weightCommitment": weight_commitment,
        "registerTransactionHash": "0x" + bytes(receipt.transactionHash).hex(),
        "verifierMode": v.build.mode.value,
    }
    if v.vk_data is not None:
        book["models"][m.name]["vkData"] = f"{m.name}/{v.vk_data.contract_name}"
    write_json_atomic(dfile, book)
    return Deployment(chain_id=chain.chain_id, circuit=m.name, model_id=model_id, consumer=consumer,
                      registry=registry, verifier=verifier, gate=gate, reusable_verifier=v.shared,
                      registry_address=registry_address, deployments_file=dfile, register_gas=receipt.gasUsed,
                      verifier_runtime_size=v.build.runtime_size, instance_layout=layout_fields,
                      verifier_mode=v.build.mode.value, vk_data=v.vk_data)


@dataclass(frozen=True)
class _VerifierDeployment:
    verifier: DeployedContract  # what the registry records: it offers verifyProof(bytes, uint256[])
    build: evm.VerifierBuild
    shared: DeployedContract | None = None  # reusable: the shared verifier, when this call deployed it
    vk_data: DeployedContract | None = None  # split-vk: the verifying key's data contract


def _deploy_verifier(chain: Chain, m: manifest_mod.Manifest, mode: evm.VerifierMode | None, book: dict,
                     base: Path) -> _VerifierDeployment:
    """The circuit's verifier in `mode` (None: the first that fits EIP-170, see `evm.choose_verifier`):
    its own standard verifier; its split-vk verifier after the data contract holding its verifying key; or
    its adapter on the chain's shared reusable verifier, deployed first when the chain has none. Records
    them in `book`."""
    vb = evm.choose_verifier(m.dir, mode).build  # (logs which verifier and why)
    if vb.mode is evm.VerifierMode.STANDARD:
        verifier = chain.deploy(evm.load_artifact(vb.artifact_path), [], f"deploying {m.name}'s verifier")
        book["contracts"][f"{m.name}/{verifier.contract_name}"] = verifier.record(vb.artifact_path, base)
        return _VerifierDeployment(verifier, vb)
    if vb.mode is evm.VerifierMode.SPLIT_VK:
        vk_data = _deploy_vk_data(chain, m, vb)
        book["contracts"][f"{m.name}/{vk_data.contract_name}"] = vk_data.record(vb.vk_data_path, base)
        verifier = chain.deploy(evm.load_artifact(vb.artifact_path), [vk_data.address],
                                f"deploying {m.name}'s split-vk verifier")
        book["contracts"][f"{m.name}/{verifier.contract_name}"] = verifier.record(vb.artifact_path, base)
        return _VerifierDeployment(verifier, vb, vk_data=vk_data)

    shared = None
    shared_record = book["contracts"].get(evm.REUSABLE_VERIFIER_CONTRACT)
    if shared_record is None or not chain.has_code(shared_record["address"]):
        shared = chain.deploy(evm.load_artifact(vb.artifact_path), [], "deploying the reusable verifier")
        book["contracts"][evm.REUSABLE_VERIFIER_CONTRACT] = shared.record(vb.artifact_path, base)
        shared_record = book["contracts"][evm.REUSABLE_VERIFIER_CONTRACT]
    adapter_path = evm.build_contracts()["ReusableVerifierAdapter"]
    words = [bytes.fromhex(w[2:]) for w in read_json(vb.vka_path, "VKA")["words"]]
    verifier = chain.deploy(evm.load_artifact(adapter_path), [shared_record["address"], words],
                            f"deploying {m.name}'s reusable-verifier adapter")
    book["contracts"][f"{m.name}/{verifier.contract_name}"] = verifier.record(adapter_path, base)
    return _VerifierDeployment(verifier, vb, shared=shared)


def _deploy_vk_data(chain: Chain, m: manifest_mod.Manifest, vb: evm.VerifierBuild) -> DeployedContract:
    """Deploy the data contract holding a split-vk verifier's verifying key; check its code is the key."""
    data = evm.load_vk_data(vb.vk_data_path)
    runtime = bytes.fromhex(data["deployedBytecode"][2:])
    vk = runtime[1:]
    checked = evm.load_artifact(vb.artifact_path).get("vkDataKeccak")
    if "0x" + keccak(vk).hex() != checked or bytes.fromhex(data["initcode"][2:]) != evm.vk_data_initcode(vk):
        raise UsageError(f"{vb.vk_data_path} does not hold the verifying key {vb.artifact_path} checks "
                         f"(keccak256 {checked}): rebuild with `zkinfer contracts build --verifier split-vk`")
    deployed = chain.deploy_code(evm.vk_data_initcode(vk), evm.VK_DATA_CONTRACT,
                                 f"deploying {m.name}'s verifying-key data contract")
    code = chain.code(deployed.address)
    if code != runtime:
        raise ChainError(f"{m.name}'s verifying-key data contract at {deployed.address} holds {len(code)} bytes "
                         f"of code, not the 0x00 byte and {len(vk)}-byte key it was deployed with")
    return deployed


def params_commitment(circuit_dir: str | os.PathLike) -> str:
    """The weight commitment of a circuit with hashed weights, as the registry pins it: keccak256 over the
    param-hash instances (recorded in the manifest by the build; they depend on the weights only)."""
    m = manifest_mod.load(circuit_dir)
    hashes = m.circuit.get("param_hashes") or []
    if not hashes:
        raise UsageError(f"{m.name}: the manifest records no param hashes (are its weights hashed?)")
    return "0x" + keccak(b"".join(_word(felt_to_uint256(h)) for h in hashes)).hex()


# ---------------------------------------------------------------------------------------------------------
# Proofs, features, submission


def load_proof(path: str | os.PathLike) -> dict:
    """A zkinfer proof file: ezkl's proof.json plus `calldata` and `zkinfer` (see pipeline.prove)."""
    proof = read_json(path, "proof file")
    if not isinstance(proof, dict) or "calldata" not in proof or "zkinfer" not in proof:
        raise UsageError(f"{path} is not a zkinfer proof file (no calldata/zkinfer fields): "
                         "make it with `zkinfer prove`")
    return proof


def _instances(proof: dict) -> list[int]:
    return [int(x, 16) for x in proof["calldata"]["instances"]]


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def feature_commitment(circuit_dir: str | os.PathLike, features: list[float]) -> str:
    """What a feature publisher posts for one subject, from the subject's raw features (one slot's
    inputs, flattened): the features quantized as the circuit quantizes them, then hashed like
    `slot_commitments`. Hex, 0x-prefixed."""
    import ezkl

    m = manifest_mod.load(circuit_dir)
    slots, hashed, inputs_per_slot, _, _ = layout_mod.registry_layout(m)
    expected = inputs_per_slot or _hashed_input_size(m)
    if len(features) != expected:
        raise UsageError(f"{m.name} takes {expected} features per subject, got {len(features)}")
    scale = m.circuit["input_scales"][0]
    felts = [ezkl.float_to_felt(float(x), scale) for x in features]
    if hashed:
        return "0x" + _word(felt_to_uint256(ezkl.poseidon_hash(felts)[0])).hex()
    return "0x" + keccak(b"".join(_word(felt_to_uint256(f)) for f in felts)).hex()


def _hashed_input_size(m: manifest_mod.Manifest) -> int:
    import math

    return math.prod(m.circuit["input_shapes"][0])


@dataclass(frozen=True)
class GateHandle:
    """A deployed circuit's gate, as recorded in the deployments file."""

    chain: Chain
    circuit: str
    model_id: int
    consumer: str
    manifest_sha256: str
    layout: dict
    gate: object  # web3 contract
    verifier: object  # web3 contract


def open_gate(chain: Chain, circuit: str, deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR
              ) -> GateHandle:
    """The gate `deploy` made for `circuit` on this chain."""
    book = load_deployments(chain.chain_id, deployments_dir)
    model = book["models"].get(circuit)
    dfile = deployments_path(chain.chain_id, deployments_dir)
    if model is None:
        raise UsageError(f"{circuit} is not deployed on chain {chain.chain_id} (no entry in {dfile}): "
                         f"run `zkinfer deploy` first")
    records = {k: book["contracts"][model[k]] for k in ("gate", "verifier")}
    if not chain.has_code(records["gate"]["address"]):
        raise ChainError(f"{dfile} records {circuit}'s gate at {records['gate']['address']}, but there is no "
                         "code there (was the local chain restarted?): deploy again")
    base = dfile.parent.parent
    abis = {k: evm.load_artifact(base / r["artifact"])["abi"] for k, r in records.items()}
    return GateHandle(chain=chain, circuit=circuit, model_id=model["modelId"], consumer=model["consumer"],
                      manifest_sha256=model["manifestSha256"], layout=model["instanceLayout"],
                      gate=chain.contract(records["gate"]["address"], abis["gate"]),
                      verifier=chain.contract(records["verifier"]["address"], abis["verifier"]))


def _proof_gate(chain: Chain, proof: dict, path, deployments_dir) -> GateHandle:
    meta = proof["zkinfer"]
    handle = open_gate(chain, meta["circuit"], deployments_dir)
    if meta["manifest_sha256"] != handle.manifest_sha256:
        raise UsageError(f"{path} proves circuit {meta['circuit']} version "
                         f"{meta['manifest_sha256'][:12]}..., "
                         f"but chain {chain.chain_id} has version {handle.manifest_sha256[:12]}... deployed: "
                         "prove with the deployed circuit, or deploy this one")
    return handle


def subjects_for(handle: GateHandle, given: list[str]) -> list[bytes]:
    """The gate's subjects for one proof's slots: borrowers (lending) or the current period (bond)."""
    slots = handle.layout["slots"]
    if handle.consumer == "bond":
        period = handle.chain.call(handle.gate.functions.currentPeriod(), "reading the bond's current period")
        return [_word(period)] * slots
    if len(given) != slots:
        raise UsageError(f"{handle.circuit}'s proofs cover {slots} borrower(s): give one --subject ADDRESS "
                         f"per slot, got {len(given)}")
    out = []
    for s in given:
        try:
            out.append(bytes(12) + bytes.fromhex(to_checksum_address(s)[2:]))
        except ValueError:
            raise UsageError(f"subject {s!r} is not an address (lending subjects are borrowers)") from None
    return out


def _take_subjects(handle: GateHandle, subjects: list[str], used: int, proof: dict | None = None,
                   path=None) -> tuple[list[bytes], int]:
    """The next proof's subjects from `subjects`, one per slot in slot order. A proof from `zkinfer batch`
    lists its slots; its padding slots (a short last pack, repeating its last row) take no --subject:
    they repeat the last real slot's subject, the same borrower with the same features again."""
    if handle.consumer == "bond":
        return subjects_for(handle, []), used
    n = handle.layout["slots"]
    padding = sum(bool(s.get("padding")) for s in (proof or {}).get("slots") or [])
    given = subjects[used: used + n - padding]
    if padding and len(given) == n - padding:
        given += given[-1:] * padding
    elif padding:
        raise UsageError(f"{path}: its proof covers {n - padding} borrower(s) ({padding} padding slot(s) repeat "
                         f"the last): give one --subject ADDRESS per borrower, got {len(given)}")
    return subjects_for(handle, given), used + n - padding


@dataclass(frozen=True)
class Posting:
    subject: str
    commitment: str
    posted_at: int  # block timestamp: with the subject, it names the posting in statement keys
    transaction_hash: str
    gas_used: int


def post_features(proof_paths: list[str | os.PathLike], rpc_url: str, *, subjects: list[str] | None = None,
                  deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR,
                  private_key: str | None = None) -> list[Posting]:
    """The feature publisher's part, from proofs' own inputs (a demo and test convenience: a real oracle
    computes `feature_commitment` from its data). Posts each slot's commitment for its subject."""
    chain = Chain(rpc_url, private_key)
    postings = []
    for _path, proof, handle, subject_words in _plan(chain, proof_paths, subjects, deployments_dir):
        posted = set()
        for subject, commitment in zip(subject_words, slot_commitments(_instances(proof), handle.layout),
                                       strict=True):
            if (subject, commitment) in posted:  # a padding slot: its subject's features are already posted
                continue
            posted.add((subject, commitment))
            receipt = chain.transact(handle.gate.functions.postFeatures(subject, commitment),
                                     f"posting features for subject 0x{subject.hex()}")
            event = handle.gate.events.FeaturesPosted().process_receipt(receipt)[0]["args"]
            postings.append(Posting(subject="0x" + subject.hex(), commitment="0x" + commitment.hex(),
                                    posted_at=event["postedAt"],
                                    transaction_hash="0x" + bytes(receipt.transactionHash).hex(),
                                    gas_used=receipt.gasUsed))
    return postings


def _plan(chain: Chain, proof_paths, subjects: list[str] | None, deployments_dir) -> list[tuple]:
    """(path, proof, gate, subjects) per proof, every proof read and every subject assigned before a single
    transaction is sent: a mistake in the command line costs nothing on chain."""
    plan, used = [], 0
    for path in proof_paths:
        proof = load_proof(path)
        handle = _proof_gate(chain, proof, path, deployments_dir)
        subject_words, used = _take_subjects(handle, subjects or [], used, proof, path)
        plan.append((path, proof, handle, subject_words))
    _check_subjects_used(subjects, used)
    return plan


def _check_subjects_used(subjects: list[str] | None, used: int) -> None:
    if subjects and used < len(subjects):
        raise UsageError(f"{len(subjects) - used} --subject value(s) left over: one per slot of each proof")


@dataclass(frozen=True)
class Submission:
    """One proof acted on by its gate."""

    proof_path: str
    circuit: str
    model_id: int
    transaction_hash: str
    block_number: int
    gas_used: int
    statement_key: str
    effects: list[dict]  # the gate's events: RateUpdated / CouponAdjusted with their arguments


GATE_EFFECT_EVENTS = ("RateUpdated", "CouponAdjusted")


def submit(proof_paths: list[str | os.PathLike], rpc_url: str, *, subjects: list[str] | None = None,
           deployments_dir: str | os.PathLike = DEFAULT_DEPLOYMENTS_DIR,
           private_key: str | None = None) -> list[Submission]:
    """Send proofs to their circuits' gates, one transaction each; returns what each changed and its gas.

    Lending proofs need one `subjects` entry (a borrower address) per slot, consumed in order across the
    proofs (a batch proof's `slots` list the order; its padding slots take none, see `_take_subjects`);
    bond proofs are about the current period. A gate's refusal raises ContractRevertError with
    the custom error's name and arguments (e.g. StatementAlreadyConsumed for a replayed proof).
    """
    chain = Chain(rpc_url, private_key)
    return [submit_calldata(handle, proof["calldata"], subject_words, str(path))
            for path, proof, handle, subject_words in _plan(chain, proof_paths, subjects, deployments_dir)]


def submit_calldata(handle: GateHandle, calldata: dict, subjects: list[bytes], label: str = "proof",
                    model_id: int | None = None) -> Submission:
    """Send one proof's calldata to a gate under `model_id` (default: the deployed circuit's)."""
    model_id = handle.model_id if model_id is None else model_id
    fn = handle.gate.functions.submit(model_id, bytes.fromhex(calldata["proof"][2:]),
                                      [int(x, 16) for x in calldata["instances"]], subjects)
    receipt = handle.chain.transact(fn, f"submitting {label} to {handle.circuit}'s gate")
    from web3.logs import DISCARD

    consumed = handle.gate.events.StatementConsumed().process_receipt(receipt, errors=DISCARD)
    effects = []
    for name in GATE_EFFECT_EVENTS:
        event = getattr(handle.gate.events, name, None)
        if event is not None:
            effects += [{"event": name, **{k: _display(v) for k, v in e["args"].items()}}
                        for e in event().process_receipt(receipt, errors=DISCARD)]
    return Submission(proof_path=label, circuit=handle.circuit, model_id=model_id,
                      transaction_hash="0x" + bytes(receipt.transactionHash).hex(),
                      block_number=receipt.blockNumber, gas_used=receipt.gasUsed,
                      statement_key="0x" + consumed[0]["args"]["statementKey"].hex(), effects=effects)


def verification_gas(handle: GateHandle, calldata: dict) -> int:
    """Gas of a transaction calling the verifier alone with this proof (what verification costs)."""
    from web3.exceptions import ContractLogicError

    fn = handle.verifier.functions.verifyProof(bytes.fromhex(calldata["proof"][2:]),
                                               [int(x, 16) for x in calldata["instances"]])
    try:
        return fn.estimate_gas()
    except ContractLogicError as e:
        raise handle.chain._reverted("verifying the proof", e) from None


def measure_gas(circuit_dir: str | os.PathLike, proof_path: str | os.PathLike, rpc_url: str,
                consumer: str = "lending", *, deployments_dir: str | os.PathLike | None = None,
                verifier_mode: evm.VerifierMode | str | None = None, reusable: bool | None = None,
                terms: dict | None = None) -> dict:
    """Deploy the circuit afresh, post the proof's features, verify and submit it: the gas of each step.

    For benchmarks on a local chain. Lending uses made-up borrowers and, unless `terms` say otherwise, a
    circuit breaker wide enough for any PD, so the measured submission goes through.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="zkinfer-gas-") as tmp:
        ddir = deployments_dir or Path(tmp) / "deployments"
        if consumer == "lending":
            terms = {"maxRateStepBps": 10_000, **(terms or {})}
        d = deploy(circuit_dir, rpc_url, consumer, verifier_mode=verifier_mode, reusable=reusable,
                   deployments_dir=ddir, terms=terms)
        chain = Chain(rpc_url)
        # Distinct borrowers: each slot's features are posted under its own subject.
        borrower = [to_checksum_address(keccak(text=f"zkinfer-gas-borrower-{i}")[:20])
                    for i in range(d.instance_layout["slots"])]
        postings = post_features([proof_path], rpc_url, subjects=borrower if consumer == "lending" else None,
                                 deployments_dir=ddir)
        handle = open_gate(chain, d.circuit, ddir)
        verify = verification_gas(handle, load_proof(proof_path)["calldata"])
        [s] = submit([proof_path], rpc_url, subjects=borrower if consumer == "lending" else None,
                     deployments_dir=ddir)
    return {"circuit": d.circuit, "consumer": consumer, "chain_id": d.chain_id,
            "verifier_mode": d.verifier_mode, "verifier_runtime_bytes": d.verifier_runtime_size, "deploy": d.gas(),
            "post_features": sum(p.gas_used for p in postings), "verify_proof": verify, "submit": s.gas_used,
            "effects": s.effects}


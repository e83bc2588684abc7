"""Deploy a circuit: its verifier, the model registry (one per chain) and a consumer gate; register the model.

    d = deploy("circuits/credit_risk", rpc_url, consumer="lending")
    d.gate.address, d.model_id, d.gas()

Every transaction is followed by a write of the deployments book (`pipeline.chain.deployments`), so a
deployment that fails midway leaves a record of every contract it put on chain.

Recorded shared contracts (the registry, ezkl's reusable verifier) are reused only when the runtime code at
their address hashes (keccak256) to what this build would deploy, never on a bare "there is code" check:
an edited book or a changed contract must not slip another contract in. No code at all there: the chain was
reset, nothing recorded exists, and the book starts afresh. Other code: for the registry, which holds every
model version and which gates pin, deploy refuses (a new registry would silently split the book); the
reusable verifier holds nothing, so a fresh one is deployed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from eth_utils import keccak

from .. import evm
from .. import manifest as manifest_mod
from ..artifacts import read_json, sha256_file
from ..errors import ChainError, UsageError
from ..felt import felt_to_uint256, words
from ..layout import registry_layout
from .client import ZERO_ADDRESS, Chain, checked_address
from .deployments import DEFAULT_DEPLOYMENTS_DIR, INCOMPLETE, DeployedContract, DeploymentsBook
from .node import LOCAL_CHAIN_ID

log = logging.getLogger(__name__)

CONSUMERS = {"lending": "RiskAdjustedLending", "bond": "AdaptiveCouponBond"}
# Gates' default terms. Rates and coupons in basis points; thresholds in the model's output units (the
# inflation_forecast model predicts percent); ages and periods in seconds.
DEFAULT_MAX_FEATURE_AGE_S = 24 * 3600
DEFAULT_LENDING_TERMS = {"baseRateBps": 200, "slopeBps": 1500, "maxRateStepBps": 300, "initialRateBps": 800}
DEFAULT_BOND_TERMS = {"initialCouponBps": 400, "floorBps": 200, "capBps": 800, "stepBps": 25,
                      "raiseAbove": 3.0, "cutBelow": 2.0, "periodLength": 90 * 24 * 3600}
OUTPUT_DECIMALS = 18  # InferenceGate.OUTPUT_DECIMALS
MAX_FEATURE_AGE_LIMIT_S = 2**32 - 1  # InferenceGate.maxFeatureAge is a uint32 (seconds)
# InferenceGate.minPostingInterval: after a proof acted on a subject's posting, its next posting waits this
# long, so a compromised publisher moves a lending rate at most one breaker step per interval. Off the dev
# chain, lending gates get DEFAULT_MIN_POSTING_INTERVAL_S; on 31337 (demos, tests) none, so they re-post
# freely; bond gates none anywhere (a period's coupon moves one step from its start whatever is posted, and
# a wait would only delay corrections).
DEFAULT_MIN_POSTING_INTERVAL_S = 3600
MIN_POSTING_INTERVAL_LIMIT_S = 2**32 - 1  # a uint32 (seconds)


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
    instance_layout: dict  # InstanceLayout's fields, as registered (`RegistryLayout.record`)
    verifier_mode: str = evm.VerifierMode.STANDARD.value  # standard, split-vk or reusable
    vk_data: DeployedContract | None = None  # split-vk: the verifying key's data contract
    guardian: str | None = None  # who may suspend the model besides the owner (None: nobody else)
    min_posting_interval: int = 0  # seconds a subject's next posting waits after an action

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

    def summary(self) -> dict:
        """What `zkinfer deploy` prints: addresses, the model id, gas and where it is all recorded."""
        out = {"chainId": self.chain_id, "circuit": self.circuit, "modelId": self.model_id,
               "registry": self.registry_address, "verifierMode": self.verifier_mode,
               "verifier": self.verifier.address, "gate": self.gate.address, "guardian": self.guardian,
               "minPostingInterval": self.min_posting_interval, "gas": self.gas(),
               "deployments": str(self.deployments_file)}
        if self.vk_data is not None:
            out["vkData"] = self.vk_data.address
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
           guardian: str | None = None, min_posting_interval: int | None = None,
           private_key: str | None = None) -> Deployment:
    """Deploy a circuit's verifier, the registry (the recorded one reused when it runs this build's code; see
    the module's docstring), and a consumer gate;
    register the model, accept it on the gate, allow the feature publisher; record it all in
    ``deployments/<chainId>.json``, after each transaction.

    `verifier_mode`: None (or "auto") picks the first verifier whose runtime code fits EIP-170 (see
    `evm.choose_verifier`): the standard one; else split-vk, its verifying key in a data contract deployed
    first; else ezkl's reusable verifier (shared per chain) with this circuit's VKA. "standard", "split-vk"
    or "reusable" forces one (`reusable`, the older switch: True reusable, False standard). Whichever it is,
    the registry records the contract offering `verifyProof(bytes, uint256[])`: the gates need no change.
    A circuit built on an insecure SRS (a dev SRS, or any `--srs` file that is not the pinned public ceremony
    file: `pipeline.srs`) is refused (UsageError) on any chain but 31337 unless `allow_insecure_srs`: whoever
    generated that SRS can forge its proofs. So is, before any
    transaction, a circuit a gate must not act on (`layout.registry_layout`): private weights (any weights
    verify), or slots a gate would read at the wrong instances.
    `feature_publisher` defaults to the deployer. `weight_commitment` (hex; circuits with hashed weights
    only) defaults to the circuit's own (`params_commitment`).
    `guardian` (may suspend the model, nothing else: `pipeline.chain.breaker`) defaults to the deployer; the
    zero address means none. `min_posting_interval` (seconds a subject's next posting waits once a proof
    acted on one) defaults to DEFAULT_MIN_POSTING_INTERVAL_S for lending off chain 31337, else 0. Both are
    set, and recorded in the book, before the publisher is allowed: no posting predates them.
    """
    if consumer not in CONSUMERS:
        raise UsageError(f"unknown consumer {consumer!r}: choose one of {', '.join(CONSUMERS)}")
    if not 1 <= max_feature_age <= MAX_FEATURE_AGE_LIMIT_S:
        raise UsageError(f"--max-feature-age {max_feature_age}: give 1 to {MAX_FEATURE_AGE_LIMIT_S} seconds")
    if min_posting_interval is not None and not 0 <= min_posting_interval <= MIN_POSTING_INTERVAL_LIMIT_S:
        raise UsageError(f"--min-posting-interval {min_posting_interval}: give 0 to {MIN_POSTING_INTERVAL_LIMIT_S} "
                         "seconds")
    if guardian is not None:
        guardian = checked_address(guardian, "--guardian")
    mode = evm.verifier_mode(verifier_mode, reusable)
    m = manifest_mod.load(circuit_dir)
    manifest_mod.verify_artifacts(m, manifest_mod.VERIFY_FILES)
    chain = Chain(rpc_url, private_key)
    if m.insecure_srs and chain.chain_id != LOCAL_CHAIN_ID and not allow_insecure_srs:
        raise UsageError(f"refusing to deploy {m.name} to chain {chain.chain_id}: it was built with an insecure "
                         f"SRS ({m.srs.get('origin', 'insecure')}), not a public ceremony's, so whoever generated "
                         "it can forge proofs; rebuild it with a ceremony SRS (--srs, a file ezkl's get_srs "
                         "downloads), or pass --allow-insecure-srs for a test network")
    layout = registry_layout(m)
    if consumer == "bond" and layout.slots != 1:
        raise UsageError(f"{m.name} proves {layout.slots} inferences at once; the bond acts on one per period")
    if layout.param_hashes and not weight_commitment:
        weight_commitment = params_commitment(m.dir)

    book = DeploymentsBook(chain.chain_id, deployments_dir)
    contract_paths = evm.build_contracts()
    artifacts = {n: evm.load_artifact(p) for n, p in contract_paths.items()}
    registry_record = book.contracts.get("ModelRegistry")
    matches = _runtime_matches(chain, registry_record, artifacts["ModelRegistry"]) if registry_record else None
    if registry_record and matches is None:
        # A restarted local node (or a record from another network): nothing recorded is there any more.
        log.info("%s: recorded registry %s has no code on chain %d; starting a fresh deployments record",
                 book.path, registry_record["address"], chain.chain_id)
        book.start_afresh()
        registry_record = None
    elif registry_record and not matches:
        raise ChainError(f"{book.path} records the ModelRegistry at {registry_record['address']}, but the code "
                         f"there is not the ModelRegistry this build deploys (runtime keccak256 differs): the "
                         "contracts changed since, or the record was edited. Refusing to register into it: deploy "
                         "into another --deployments folder for a new registry, or remove the record if that "
                         "chain was reset")
    # The circuit's old entry names contracts this deployment replaces as it goes: until it finishes, the
    # entry is not to be used.
    book.mark_incomplete(m.name, "a new deployment of it started and did not finish")
    v = _deploy_verifier(chain, m, mode, book)
    verifier = v.verifier

    registry = None
    if registry_record is None:
        registry = chain.deploy(artifacts["ModelRegistry"], [chain.account])
        book.record_contract("ModelRegistry", registry, contract_paths["ModelRegistry"])
        registry_address = registry.address
    else:
        registry_address = registry_record["address"]
    vk_sha256 = sha256_file(m.artifact(manifest_mod.VK))
    reg = chain.contract(registry_address, artifacts["ModelRegistry"]["abi"])
    receipt = chain.transact(
        reg.functions.register(verifier.address, bytes.fromhex(vk_sha256),
                               bytes.fromhex(m.circuit_id), _output_scale(m), layout,
                               bytes.fromhex(weight_commitment[2:]) if weight_commitment else bytes(32)),
        f"registering {m.name}")
    model_id = reg.events.ModelRegistered().process_receipt(receipt)[0]["args"]["modelId"]

    gate_name = CONSUMERS[consumer]
    entry = {
        "modelId": model_id, "circuitId": m.circuit_id, "vkSha256": vk_sha256,
        "consumer": consumer, "registry": "ModelRegistry", "verifier": f"{m.name}/{verifier.contract_name}",
        "gate": f"{m.name}/{gate_name}", "insecureSrs": m.insecure_srs, "instanceLayout": layout.record(),
        "weightCommitment": weight_commitment,
        "registerTransactionHash": "0x" + bytes(receipt.transactionHash).hex(),
        "verifierMode": v.build.mode.value,
    }
    if v.vk_data is not None:
        entry["vkData"] = f"{m.name}/{v.vk_data.contract_name}"
    entry[INCOMPLETE] = f"its {gate_name} is not deployed"
    book.record_model(m.name, entry)

    gate = chain.deploy(artifacts[gate_name],
                        _gate_args(chain, consumer, registry_address, max_feature_age, terms))
    book.mark_incomplete(m.name, f"its {gate_name} has not accepted model {model_id}")
    book.record_contract(f"{m.name}/{gate_name}", gate, contract_paths[gate_name])
    g = chain.contract(gate.address, artifacts[gate_name]["abi"])
    chain.transact(g.functions.acceptModel(model_id, output_index),
                   f"accepting model {model_id} on {gate_name}")
    guardian, interval = _configure_breaker(chain, g, book, m.name, consumer, guardian, min_posting_interval)
    book.mark_incomplete(m.name, f"its {gate_name} does not allow the feature publisher")
    book.save()
    chain.transact(g.functions.setFeaturePublisher(feature_publisher or chain.account, True),
                   "allowing the feature publisher")
    book.mark_incomplete(m.name, None)
    book.save()
    return Deployment(chain_id=chain.chain_id, circuit=m.name, model_id=model_id, consumer=consumer,
                      registry=registry, verifier=verifier, gate=gate, reusable_verifier=v.shared,
                      registry_address=registry_address, deployments_file=book.path, register_gas=receipt.gasUsed,
                      verifier_runtime_size=v.build.runtime_size, instance_layout=layout.record(),
                      verifier_mode=v.build.mode.value, vk_data=v.vk_data, guardian=guardian,
                      min_posting_interval=interval)


def _configure_breaker(chain: Chain, gate, book: DeploymentsBook, name: str, consumer: str, guardian: str | None,
                       interval: int | None) -> tuple[str | None, int]:
    """Set a new gate's guardian (default: the deployer) and posting interval (see `deploy`); record both.
    A gate starts with neither (zero address, 0 s): only what differs is sent."""
    guardian = chain.account if guardian is None else guardian
    if interval is None:
        interval = DEFAULT_MIN_POSTING_INTERVAL_S if consumer == "lending" and chain.chain_id != LOCAL_CHAIN_ID else 0
    if guardian != ZERO_ADDRESS:
        book.mark_incomplete(name, "its gate has no guardian yet")
        book.save()
        chain.transact(gate.functions.setGuardian(guardian), "setting the gate's guardian")
    if interval:
        book.mark_incomplete(name, "its gate's minimum posting interval is not set")
        book.save()
        chain.transact(gate.functions.setMinPostingInterval(interval), "setting the minimum posting interval")
    entry = book.models[name]
    entry["guardian"] = None if guardian == ZERO_ADDRESS else guardian
    entry["minPostingInterval"] = interval
    return entry["guardian"], interval


@dataclass(frozen=True)
class _VerifierDeployment:
    verifier: DeployedContract  # what the registry records: it offers verifyProof(bytes, uint256[])
    build: evm.VerifierBuild
    shared: DeployedContract | None = None  # reusable: the shared verifier, when this call deployed it
    vk_data: DeployedContract | None = None  # split-vk: the verifying key's data contract


def _deploy_verifier(chain: Chain, m: manifest_mod.Manifest, mode: evm.VerifierMode | None,
                     book: DeploymentsBook) -> _VerifierDeployment:
    """The circuit's verifier in `mode` (None: the first that fits EIP-170, see `evm.choose_verifier`):
    its own standard verifier; its split-vk verifier after the data contract holding its verifying key; or
    its adapter on the chain's shared reusable verifier, deployed first when the chain has none. Records
    each in `book` as it is deployed."""
    vb = evm.choose_verifier(m.dir, mode).build  # (logs which verifier and why)
    if vb.mode is evm.VerifierMode.STANDARD:
        verifier = chain.deploy(evm.load_artifact(vb.artifact_path), [], f"deploying {m.name}'s verifier")
        book.record_contract(f"{m.name}/{verifier.contract_name}", verifier, vb.artifact_path)
        return _VerifierDeployment(verifier, vb)
    if vb.mode is evm.VerifierMode.SPLIT_VK:
        vk_data = _deploy_vk_data(chain, m, vb)
        book.record_contract(f"{m.name}/{vk_data.contract_name}", vk_data, vb.vk_data_path)
        verifier = chain.deploy(evm.load_artifact(vb.artifact_path), [vk_data.address],
                                f"deploying {m.name}'s split-vk verifier")
        book.record_contract(f"{m.name}/{verifier.contract_name}", verifier, vb.artifact_path)
        return _VerifierDeployment(verifier, vb, vk_data=vk_data)

    shared = None
    shared_artifact = evm.load_artifact(vb.artifact_path)
    shared_record = book.contracts.get(evm.REUSABLE_VERIFIER_CONTRACT)
    matches = _runtime_matches(chain, shared_record, shared_artifact) if shared_record else None
    if matches is False:
        log.info("%s: the code at the recorded reusable verifier %s is not this build's; deploying a new one",
                 book.path, shared_record["address"])
    if not matches:
        shared = chain.deploy(shared_artifact, [], "deploying the reusable verifier")
        book.record_contract(evm.REUSABLE_VERIFIER_CONTRACT, shared, vb.artifact_path)
        shared_record = book.contracts[evm.REUSABLE_VERIFIER_CONTRACT]
    adapter_path = evm.build_contracts()["ReusableVerifierAdapter"]
    vka_words = [bytes.fromhex(w[2:]) for w in read_json(vb.vka_path, "VKA")["words"]]
    verifier = chain.deploy(evm.load_artifact(adapter_path), [shared_record["address"], vka_words],
                            f"deploying {m.name}'s reusable-verifier adapter")
    book.record_contract(f"{m.name}/{verifier.contract_name}", verifier, adapter_path)
    return _VerifierDeployment(verifier, vb, shared=shared)


def _deploy_vk_data(chain: Chain, m: manifest_mod.Manifest, vb: evm.VerifierBuild) -> DeployedContract:
    """Deploy the data contract holding a split-vk verifier's verifying key; check its code is the key."""
    vk = evm.checked_vk(vb.vk_data_path, evm.load_artifact(vb.artifact_path).get("vkDataKeccak"), vb.artifact_path)
    deployed = chain.deploy_code(evm.vk_data_initcode(vk), evm.VK_DATA_CONTRACT,
                                 f"deploying {m.name}'s verifying-key data contract")
    code = chain.code(deployed.address)
    if code != evm.vk_data_runtime(vk):
        raise ChainError(f"{m.name}'s verifying-key data contract at {deployed.address} holds {len(code)} bytes "
                         f"of code, not the 0x00 byte and {len(vk)}-byte key it was deployed with")
    return deployed


def _runtime_matches(chain: Chain, record: dict, artifact: dict) -> bool | None:
    """Whether the recorded contract's runtime code is byte for byte what `artifact` deploys (compared by
    keccak256); None when its address holds no code. Only for contracts without immutables (the registry,
    the reusable verifier): their deployed code is the artifact's `deployedBytecode` itself."""
    code = chain.code(record["address"])
    if not code:
        return None
    return keccak(code) == keccak(hexstr=artifact["deployedBytecode"])


def params_commitment(circuit_dir: str | os.PathLike) -> str:
    """The weight commitment of a circuit with hashed weights, as the registry pins it: keccak256 over the
    param-hash instances (recorded in the manifest by the build; they depend on the weights only)."""
    m = manifest_mod.load(circuit_dir)
    hashes = m.circuit.get("param_hashes") or []
    if not hashes:
        raise UsageError(f"{m.name}: the manifest records no param hashes (are its weights hashed?)")
    return "0x" + keccak(words(felt_to_uint256(h) for h in hashes)).hex()

"""Proof mutation: a valid proof changed in every way an attacker or a corrupting channel could, each
mutant handed to `zkinfer verify` (off chain) and to the deployed verifier and gate (on chain).

Mutants (each kept self-consistent where that makes it harder to refuse: a changed proof byte is changed in
`proof`, `hex_proof` and `calldata` alike; a changed instance in `instances`, `calldata` and `outputs`):

* `byte`: one random byte of the proof's bytes set to another random value (`n_bytes` of them);
* `instance+1`, `instance-1`: every public instance moved by one (mod p);
* `swap`: each pair of differing instances exchanged; `truncate`: the last / first instance dropped, and
  `extend`: one appended;
* `outputs` / `calldata`: the decoded outputs or the calldata edited alone (the copies disagree);
* `trailing`: a byte appended to the proof.

The original must still be accepted afterwards; every mutant must be refused.
"""

from __future__ import annotations

import copy
import json
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ..felt import FIELD_MODULUS, uint256_hex
from .report import CheckResult


def _felt_hex(v: int) -> str:
    return (v % FIELD_MODULUS).to_bytes(32, "little").hex()


def _set_proof_bytes(obj: dict, data: bytes) -> None:
    obj["proof"] = list(data)
    obj["hex_proof"] = "0x" + data.hex()
    if obj.get("calldata"):
        obj["calldata"]["proof"] = "0x" + data.hex()


def _set_instances(obj: dict, felts: list[str], circuit: dict | None) -> None:
    from ..layout import decode_public_outputs

    obj["instances"] = [felts]
    if obj.get("calldata"):
        obj["calldata"]["instances"] = [uint256_hex(int.from_bytes(bytes.fromhex(f), "little")) for f in felts]
    if circuit is not None and obj.get("outputs") is not None and len(felts) == circuit["num_instances"]:
        try:
            obj["outputs"] = decode_public_outputs(felts, circuit)
        except ValueError:
            pass


def mutants(proof: dict, circuit: dict, n_bytes: int, seed: int) -> Iterator[tuple[str, str, dict]]:
    """(kind, description, mutated proof-file JSON) for every mutant of `proof`."""
    rng = random.Random(seed)
    data = bytes(proof["proof"])
    for _ in range(n_bytes):
        i = rng.randrange(len(data))
        new = rng.choice([b for b in range(256) if b != data[i]])
        m = copy.deepcopy(proof)
        _set_proof_bytes(m, data[:i] + bytes([new]) + data[i + 1:])
        yield "byte", f"proof byte {i}: {data[i]:#04x} -> {new:#04x}", m
    felts = list(proof["instances"][0])
    for i, f in enumerate(felts):
        v = int.from_bytes(bytes.fromhex(f), "little")
        for d in (1, -1):
            m = copy.deepcopy(proof)
            _set_instances(m, felts[:i] + [_felt_hex(v + d)] + felts[i + 1:], circuit)
            yield f"instance{d:+d}", f"instance {i} {d:+d}", m
    for i in range(len(felts)):
        for j in range(i + 1, len(felts)):
            if felts[i] != felts[j]:
                m = copy.deepcopy(proof)
                swapped = list(felts)
                swapped[i], swapped[j] = swapped[j], swapped[i]
                _set_instances(m, swapped, circuit)
                yield "swap", f"instances {i} and {j} swapped", m
    for desc, cut in (("last instance dropped", felts[:-1]), ("first instance dropped", felts[1:]),
                      ("an instance appended", felts + [felts[-1]]), ("no instances", [])):
        m = copy.deepcopy(proof)
        _set_instances(m, cut, circuit)
        yield "truncate", desc, m
    if proof.get("outputs") is not None:
        for desc, edit in (("output +0.01", lambda o: [[x + 0.01 for x in t] for t in o]),
                           ("output negated", lambda o: [[-x for x in t] for t in o]),
                           ("output 1.0", lambda o: [[1.0 for _ in t] for t in o])):
            m = copy.deepcopy(proof)
            m["outputs"] = edit(m["outputs"])
            yield "outputs", desc, m
    cd = proof.get("calldata") or {}
    if cd:
        m = copy.deepcopy(proof)
        inst = list(cd["instances"])
        inst[-1] = uint256_hex((int(inst[-1], 16) + 1) % FIELD_MODULUS)
        m["calldata"]["instances"] = inst
        yield "calldata", "calldata's last instance +1 (proof and instances untouched)", m
        m = copy.deepcopy(proof)
        p = bytearray(bytes.fromhex(cd["proof"][2:]))
        p[len(p) // 2] ^= 0x01
        m["calldata"]["proof"] = "0x" + bytes(p).hex()
        yield "calldata", "calldata's proof bytes changed (proof field untouched)", m
        m = copy.deepcopy(proof)
        m["hex_proof"] = "0x" + bytes(p).hex()
        yield "calldata", "hex_proof changed alone", m
    m = copy.deepcopy(proof)
    _set_proof_bytes(m, data + b"\x00")
    yield "trailing", "a zero byte appended to the proof", m


def offchain(circuit_dir: Path, proof_path: Path, n_bytes: int = 200, seed: int = 13,
             work: Path | None = None) -> CheckResult:
    """Every mutant through `zkinfer verify` (the real CLI in-process, real ezkl verification)."""
    from .. import manifest as manifest_mod
    from .common import run_cli

    t0 = time.perf_counter()
    res = CheckResult("proof_mutation_offchain")
    proof = json.loads(Path(proof_path).read_text())
    circuit = manifest_mod.load(circuit_dir).circuit
    with tempfile.TemporaryDirectory(prefix="zkinfer-mutants-", dir=work) as tmp:
        path = Path(tmp) / "mutant.json"
        for kind, desc, m in mutants(proof, circuit, n_bytes, seed):
            path.write_text(json.dumps(m))
            r = run_cli(["verify", str(circuit_dir), str(path)])
            refused = r.code in (1, 2) and not r.traceback and not r.out.startswith("valid")
            res.case(refused, kind, f"{desc}: {r.describe()}")
        r = run_cli(["verify", str(circuit_dir), str(proof_path)])
        original_ok = r.code == 0 and r.out.startswith("valid")
        res.case(original_ok, "original", f"the original proof: {r.describe()}")
    res.seconds = time.perf_counter() - t0
    res.notes = (f"{res.cases - 1} mutants of one real proof refused by `zkinfer verify` "
                 f"({res.count('byte')} random single-byte, {res.count('instance+1') + res.count('instance-1')} "
                 f"instance +/-1, {res.count('swap')} swaps, {res.count('truncate')} truncations, "
                 f"{res.count('outputs') + res.count('calldata')} edited outputs/calldata, 1 trailing byte); "
                 f"original {'accepted' if original_ok else 'REFUSED'}; failures = accepted mutants, tracebacks")
    return res


# Mutants that change what the chain is sent (calldata); `outputs` and `hex_proof` are off-chain copies.
ONCHAIN_KINDS = ("byte", "instance+1", "instance-1", "swap", "truncate", "calldata", "trailing")
BORROWER = "0x00000000000000000000000000000000000b0B01"


def onchain(circuit_dir: Path, rpc_url: str, work: Path, n_bytes: int = 200, seed: int = 13) -> CheckResult:
    """Every calldata-changing mutant sent to the deployed verifier (`verifyProof` as a call) and to the
    lending gate (`zkinfer submit`'s library call, a real transaction) on a real anvil; then the original
    is submitted and must be acted on. Goes through `pipeline.chain`'s public functions only.

    The proof is of `subject.ONCHAIN_FEATURES`, whose probability of default sets a first rate within the
    lending terms' circuit breaker (a sample far from the initial rate is refused with RateStepTooLarge)."""
    from .. import chain
    from .. import manifest as manifest_mod
    from ..errors import ZkinferError
    from ..prooffile import Calldata

    t0 = time.perf_counter()
    from ..prove import Prover
    from .subject import ONCHAIN_FEATURES

    res = CheckResult("proof_mutation_onchain")
    work.mkdir(parents=True, exist_ok=True)
    proof_path = work / "proof.json"
    Prover(circuit_dir).prove([list(ONCHAIN_FEATURES)], proof_path)
    ddir = work / "deployments"
    d = chain.deploy(circuit_dir, rpc_url, "lending", deployments_dir=ddir)
    chain.post_features([proof_path], rpc_url, subjects=[BORROWER], deployments_dir=ddir)
    handle = chain.open_gate(chain.Chain(rpc_url), manifest_mod.load(circuit_dir).name, ddir)
    proof = json.loads(Path(proof_path).read_text())
    circuit = manifest_mod.load(circuit_dir).circuit
    refusals: dict[str, int] = {}
    path = work / "mutant.json"
    for kind, desc, m in mutants(proof, circuit, n_bytes, seed):
        if kind not in ONCHAIN_KINDS or desc == "hex_proof changed alone":
            continue
        cd = Calldata.from_json(m["calldata"]) if kind == "calldata" else Calldata.of(m["hex_proof"], m["instances"][0])
        try:
            verified = bool(handle.verifier.functions.verifyProof(cd.proof_bytes, cd.values).call())
        except Exception:  # noqa: BLE001 (the verifier reverts on an invalid proof: refused)
            verified = False
        res.case(not verified, f"verifier:{kind}", f"verifier accepted: {desc}")
        m["calldata"] = cd.to_json()
        path.write_text(json.dumps(m))
        try:
            chain.submit([path], rpc_url, subjects=[BORROWER], deployments_dir=ddir)
            accepted, why = True, "accepted"
        except ZkinferError as e:
            accepted, why = False, e.message
        except Exception as e:  # noqa: BLE001 (anything else escaping is a traceback: a failure too)
            accepted, why = True, f"{type(e).__name__}: {e}"
        reason = _revert_name(why)
        refusals[reason] = refusals.get(reason, 0) + 1
        res.case(not accepted, f"gate:{kind}", f"gate: {desc}: {why[:200]}")
    try:
        [s] = chain.submit([proof_path], rpc_url, subjects=[BORROWER], deployments_dir=ddir)
        ok, why = bool(s.effects), f"effects {s.effects}"
    except Exception as e:  # noqa: BLE001
        ok, why = False, f"{type(e).__name__}: {e}"
    res.case(ok, "original", f"original refused: {why}")
    res.details["gate_refusals"] = refusals
    res.details["deployment"] = {"verifier_mode": getattr(d, "verifier_mode", None)}
    res.seconds = time.perf_counter() - t0
    n = (res.cases - 1) // 2
    res.notes = (f"{n} calldata mutants of one real proof, each sent to the deployed verifier (verifyProof) and "
                 f"to RiskAdjustedLending's gate (a real transaction) on anvil = {2 * n} refusals expected; "
                 f"original {'acted on' if ok else 'REFUSED'} afterwards; failures = accepted mutants")
    return res


def _revert_name(message: str) -> str:
    import re

    m = re.search(r"\b([A-Z][A-Za-z]+)\(", message)
    return m.group(1) if m else message.split(":")[0][:40]

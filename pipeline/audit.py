"""Audit a deployed model from outside: rebuild its circuit from what its owner publishes, compare with the chain.

    report = audit("published/credit_risk", rpc_url, deployments="deployments/31337.json")
    print(report.text()); sys.exit(report.exit_code)          # 0: everything matches, 1: a mismatch
    for action in events(rpc_url, deployments="deployments/31337.json"): ...

What an owner publishes (the ARTIFACTS folder): ``network.onnx`` (the graph as compiled), ``settings.json``
(ezkl's settings), ``manifest.json`` and the SRS (``kzg.srs``) or only its identity (the manifest's
``srs.sha256``: then the auditor brings the file, ``srs=``). No keys, no compiled circuit: the audit compiles
``network.onnx`` with the published settings and runs ezkl's setup against the SRS in a scratch folder,
renders the verifier from the rebuilt verifying key as `zkinfer deploy` does (`evm.render_verifier`), compiles
it with the pinned solcjs, and compares, each as one line of the report:

* the published files with the manifest's hashes, and the circuit id recomputed from them and the rebuilt
  verifying key with the manifest's and the registry's (`circuit_id`: content only, see `pipeline.manifest`);
* the rebuilt verifying key's sha256 with the manifest's and the registry's;
* the deployed verifier's runtime code (``eth_getCode``) with the compiled one, byte for byte including
  solc's metadata hash; immutables (split-vk: the key data contract's address; the reusable adapter's four)
  are read from the deployed code at the offsets solc reports, written into the compiled code, and then
  checked themselves (the data contracts' code is the rebuilt key or VKA);
* the manifest's description of the circuit (visibility, scales, instance layout) with the rebuilt circuit's
  settings and a witness of it, and the registry's instance layout, output scale and weight commitment with
  that description (hashed weights: keccak256 of the param hashes the witness carries; fixed weights are in
  the verifying key);
* the registry's and gates' code with this clone's contracts; whether the model is active, which gates
  accept it; whether the SRS is a ceremony file (a dev SRS is a warning on the local chain 31337 only).

The registry is read through one accessor, `_registry_record`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from eth_utils import keccak, to_checksum_address

from . import evm, installed_ezkl_version, native, resources
from . import manifest as manifest_mod
from .artifacts import read_json, sha256_file
from .compile import CircuitSettings
from .errors import ResourceLimitError, UsageError, ZkinferError
from .felt import FIELD_MODULUS, HALF_FIELD, felt_to_uint256, words
from .layout import registry_layout
from .srs import file_logrows
from .srs_ceremony import PUBLIC_SRS_SHA256

LOCAL_CHAIN_ID = 31337
ERROR, WARNING, INFO = "error", "warning", "info"
GATE_CONTRACTS = ("RiskAdjustedLending", "AdaptiveCouponBond")
ZERO32 = "0x" + "00" * 32


@dataclass(frozen=True)
class Check:
    """One line of an audit: `ok` or not; a failed check of severity "error" fails the audit."""

    name: str
    ok: bool
    detail: str
    severity: str = ERROR

    def line(self) -> str:
        tag = "PASS" if self.ok else {ERROR: "FAIL", WARNING: "WARN", INFO: "INFO"}[self.severity]
        return f"{tag}  {self.name}: {self.detail}"


@dataclass
class AuditReport:
    artifacts_dir: Path
    chain_id: int
    registry: str
    model_id: int
    circuit: str
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str, severity: str = ERROR) -> bool:
        self.checks.append(Check(name, bool(ok), detail, severity))
        return bool(ok)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and c.severity == ERROR]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def text(self) -> str:
        head = (f"audit of model {self.model_id} ({self.circuit}) on chain {self.chain_id}, registry "
                f"{self.registry}, from {self.artifacts_dir}")
        warnings = sum(not c.ok and c.severity == WARNING for c in self.checks)
        tail = (f"result: PASS ({len(self.checks)} checks, {warnings} warning(s))" if self.passed else
                f"result: FAIL ({len(self.failures)} of {len(self.checks)} checks failed: "
                f"{', '.join(c.name for c in self.failures)})")
        return "\n".join([head, *(c.line() for c in self.checks), tail])


# ---------------------------------------------------------------------------------------------- the chain side

def _registry_record(chain, registry: str, model_id: int) -> dict:
    """The registry's record of a model version, as a dict keyed by the struct's Solidity field names (bytes as
    0x-hex, the layout as a dict), plus ``circuitId``: the circuit identity whatever the field is called
    (``circuitId``, formerly ``manifestHash``, which `deploy` filled with the circuit id). The one place the
    registry's struct is read: a change to it changes only this function."""
    art = evm.contract_artifact("ModelRegistry")
    reg = chain.contract(registry, art["abi"])
    raw = chain.call(reg.functions.model(model_id), f"reading model {model_id} from the registry {registry}")
    [fn] = [i for i in art["abi"] if i.get("type") == "function" and i.get("name") == "model"]
    rec = _named(fn["outputs"][0]["components"], raw)
    rec.setdefault("circuitId", rec.get("manifestHash"))
    return rec


def _named(components: list[dict], values) -> dict:
    from .chain.client import display

    out = {}
    for c, v in zip(components, values, strict=True):
        out[c["name"]] = _named(c["components"], v) if c.get("components") else display(v)
    return out


def _deployments(chain_id: int, deployments: str | os.PathLike | None) -> dict | None:
    if deployments is None:
        return None
    p = Path(deployments)
    if p.is_dir():
        p = p / f"{chain_id}.json"
    if not p.is_file():
        raise UsageError(f"deployments file not found: {p}")
    data = read_json(p, "deployments file")
    if not isinstance(data, dict) or "models" not in data or "contracts" not in data:
        raise UsageError(f"{p} is not a zkinfer deployments file")
    if data.get("chainId") != chain_id:
        raise UsageError(f"{p} records chain {data.get('chainId')}, but the RPC endpoint is chain {chain_id}")
    data["_path"] = str(p)
    return data


def _book_model(book: dict | None, manifest: dict, model_id: int | None) -> tuple[str, dict] | None:
    """The deployments file's entry for the model: by id if given, else the manifest's circuit by name (or by
    circuit id, or the only one)."""
    if book is None:
        return None
    models = book["models"]
    if model_id is not None:
        return next(((n, e) for n, e in models.items() if e.get("modelId") == model_id), None)
    for name, e in models.items():
        if name == manifest.get("name"):
            return name, e
    same = [(n, e) for n, e in models.items() if e.get("circuitId") == manifest.get("circuit_id")]
    if len(same) == 1:
        return same[0]
    if len(models) == 1:
        return next(iter(models.items()))
    raise UsageError(f"{book['_path']} records {len(models)} models and none is {manifest.get('name')!r}: "
                     "give --model-id")


def _accepting_gates(chain, model_id: int, also: list[str]) -> list[str]:
    """Every contract that emitted ModelAccepted(modelId) (logs from block 0), and `also`."""
    topic = "0x" + keccak(text="ModelAccepted(uint256,uint16)").hex()
    logs = chain.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest",
                                  "topics": [topic, "0x" + model_id.to_bytes(32, "big").hex()]})
    found = [to_checksum_address(log["address"]) for log in logs] + [to_checksum_address(a) for a in also]
    return list(dict.fromkeys(found))


# ------------------------------------------------------------------------------------------------- code compare

def _strip_metadata(code: bytes) -> bytes:
    """Runtime code without solc's CBOR metadata (its length is the code's last two bytes)."""
    if len(code) < 2:
        return code
    n = int.from_bytes(code[-2:], "big")
    return code[: -(n + 2)] if n + 2 <= len(code) else code


def _immutables(artifact: dict, deployed: bytes) -> dict[str, bytes] | None:
    """Each immutable's value as the deployed code holds it at solc's offsets (None if the offsets disagree)."""
    out = {}
    for ident, refs in (artifact.get("immutableReferences") or {}).items():
        vals = {deployed[r["start"]: r["start"] + r["length"]] for r in refs}
        if len(vals) != 1:
            return None
        out[ident] = vals.pop()
    return out


def compare_code(artifact: dict, deployed: bytes, what: str) -> tuple[bool, str, str, dict[str, bytes]]:
    """(ok, detail, severity, immutables): the deployed runtime code against a compiled artifact's, byte for
    byte, with the immutables' slots taken from the deployed code; equal but for solc's metadata hash is a
    warning (the source differs only where no code comes from, e.g. comments)."""
    compiled = bytearray(bytes.fromhex(artifact["deployedBytecode"][2:]))
    if not deployed:
        return False, f"no code at {what}", ERROR, {}
    imm = _immutables(artifact, deployed) if len(deployed) == len(compiled) else None
    refs = artifact.get("immutableReferences") or {}
    if imm is not None:
        for ident, value in imm.items():
            for r in refs[ident]:
                compiled[r["start"]: r["start"] + r["length"]] = value
    n_imm = sum(len(r) for r in refs.values())
    how = (f"{len(deployed):,} bytes" + (f", {len(refs)} immutable(s) in {n_imm} slot(s) taken from the deployed "
                                          "code" if refs else ", no immutables"))
    name = artifact["contractName"]
    if bytes(compiled) == deployed:
        return True, f"{what} runtime code equals {name} compiled here, byte for byte incl. solc metadata ({how})", \
            ERROR, imm or {}
    if _strip_metadata(bytes(compiled)) == _strip_metadata(deployed):
        return False, (f"{what} executable code equals {name} compiled here but solc's metadata hash differs "
                       f"(the source text differs outside the code) ({how})"), WARNING, imm or {}
    return False, (f"{what} runtime code ({len(deployed):,} bytes, keccak {keccak(deployed).hex()[:16]}...) is not "
                   f"{name} compiled here ({len(compiled):,} bytes, keccak {keccak(bytes(compiled)).hex()[:16]}...)"), \
        ERROR, imm or {}


# --------------------------------------------------------------------------------------------------- the audit

def _published(artifacts_dir: Path, srs: str | os.PathLike | None) -> tuple[dict, Path]:
    if not artifacts_dir.is_dir():
        raise UsageError(f"artifacts folder not found: {artifacts_dir}")
    for name in (manifest_mod.ONNX, manifest_mod.SETTINGS, manifest_mod.MANIFEST):
        if not (artifacts_dir / name).is_file():
            raise UsageError(f"{artifacts_dir / name} not found: an audit needs the published network.onnx, "
                             "settings.json and manifest.json")
    data = read_json(artifacts_dir / manifest_mod.MANIFEST, "manifest")
    if not isinstance(data, dict) or data.get("schema") != manifest_mod.SCHEMA:
        raise UsageError(f"{artifacts_dir / manifest_mod.MANIFEST} is not a zkinfer manifest")
    read_json(artifacts_dir / manifest_mod.SETTINGS, "circuit settings")
    srs_path = Path(srs) if srs else artifacts_dir / manifest_mod.SRS
    if not srs_path.is_file():
        recorded = (data.get("srs") or {}).get("sha256", "?")
        raise UsageError(f"no SRS: {artifacts_dir} publishes none and no --srs was given; the manifest names the "
                         f"SRS with sha256 {recorded} ({(data.get('srs') or {}).get('origin', '?')}): give that "
                         "file with --srs FILE")
    file_logrows(srs_path)  # a file that is not an SRS at all is a usage error
    return data, srs_path


def audit(artifacts_dir: str | os.PathLike, rpc_url: str, *, deployments: str | os.PathLike | None = None,
          registry: str | None = None, model_id: int | None = None, srs: str | os.PathLike | None = None,
          scratch_dir: str | os.PathLike | None = None) -> AuditReport:
    """Rebuild the published circuit in a scratch folder and check it against the deployment (module doc).

    `deployments`: the deployments file (or its folder); `registry`: the registry's address (default: the
    file's). `model_id` defaults to the file's entry for the manifest's circuit. UsageError (exit 2) for what
    cannot be audited at all (missing files, no registry, an unknown RPC); everything else is a check."""
    from .chain.client import Chain, ContractRevertError

    artifacts_dir = Path(artifacts_dir)
    manifest, srs_path = _published(artifacts_dir, srs)
    chain = Chain(rpc_url)
    book = _deployments(chain.chain_id, deployments)
    if registry is None:
        if book is None or "ModelRegistry" not in book["contracts"]:
            raise UsageError("no registry: give --deployments FILE (recording a ModelRegistry) or --registry ADDRESS")
        registry = book["contracts"]["ModelRegistry"]["address"]
    try:
        registry = to_checksum_address(registry)
    except ValueError:
        raise UsageError(f"--registry {registry!r} is not an address") from None
    entry = _book_model(book, manifest, model_id)
    if model_id is None:
        if entry is None:
            raise UsageError("no model id: give --model-id N (or --deployments FILE recording the model)")
        model_id = int(entry[1]["modelId"])
    r = AuditReport(artifacts_dir, chain.chain_id, registry, model_id, manifest.get("name", "?"))

    r.add("registry code", *_registry_code(chain, registry))
    try:
        rec = _registry_record(chain, registry, model_id)
    except ContractRevertError as e:
        r.add("registry record", False, f"the registry has no model {model_id} ({e.error_name or e.message})")
        return r
    except Exception as e:  # not a ModelRegistry (no code, another ABI): web3 fails to decode the answer
        r.add("registry record", False, f"{registry} does not answer as a ModelRegistry ({type(e).__name__})")
        return r
    r.add("registry record", True, f"model {model_id}: verifier {rec['verifier']}, vk hash {rec['vkHash'][:18]}..., "
          f"circuit id {str(rec['circuitId'])[:18]}...", INFO)

    with tempfile.TemporaryDirectory(prefix="zkinfer-audit-", dir=scratch_dir) as tmp:
        rebuilt = _rebuild(r, artifacts_dir, manifest, srs_path, Path(tmp), chain.chain_id)
        _identity_checks(r, manifest, rec, rebuilt, artifacts_dir)
        if rebuilt.get("vk"):
            _circuit_checks(r, manifest, rebuilt)
        _layout_checks(r, manifest, rec, rebuilt)
        if rebuilt.get("vk"):
            mode = (entry[1].get("verifierMode") if entry and entry[1].get("modelId") == model_id else None)
            _verifier_checks(r, chain, rec["verifier"], rebuilt, Path(tmp), mode)
        else:
            r.add("verifier code", False, "not compared: the verifying key could not be rebuilt")
    _activity_checks(r, chain, rec, model_id, book)
    return r


def _rebuild(r: AuditReport, d: Path, manifest: dict, srs_path: Path, tmp: Path, chain_id: int) -> dict:
    """Compile network.onnx with settings.json and run setup against the SRS in `tmp`; check the SRS."""
    from .keys import setup

    arts = manifest.get("artifacts") or {}
    out = {"onnx_sha256": sha256_file(d / manifest_mod.ONNX), "settings_sha256": sha256_file(d / manifest_mod.SETTINGS),
           "settings": read_json(d / manifest_mod.SETTINGS)}
    for name, key in ((manifest_mod.ONNX, "onnx_sha256"), (manifest_mod.SETTINGS, "settings_sha256")):
        rec = (arts.get(name) or {}).get("sha256")
        r.add(name, out[key] == rec, f"sha256 {out[key][:16]}... {'equals' if out[key] == rec else 'is not'} the "
              f"manifest's record ({str(rec)[:16]}...)")
    installed = installed_ezkl_version()
    r.add("ezkl version", installed == manifest.get("ezkl_version"),
          f"rebuilt with ezkl {installed}; the manifest records {manifest.get('ezkl_version')}")

    srs = manifest.get("srs") or {}
    digest, k = sha256_file(srs_path), file_logrows(srs_path)
    r.add("srs file", digest == srs.get("sha256"), f"{srs_path.name}: sha256 {digest[:16]}..., 2^{k} rows; the "
          f"manifest records sha256 {str(srs.get('sha256'))[:16]}... ({srs.get('origin')})")
    ceremony = PUBLIC_SRS_SHA256.get(k) == digest
    if ceremony:
        r.add("srs ceremony", True, f"the public Perpetual Powers of Tau file for logrows {k} (ezkl's pinned sha256)")
    else:
        local = chain_id == LOCAL_CHAIN_ID
        r.add("srs ceremony", False, f"not a ceremony file (its sha256 is not ezkl's pinned one for logrows {k}; "
              f"manifest origin: {srs.get('origin')}): whoever made it can forge proofs"
              + ("; a warning on the local dev chain 31337" if local else ""), WARNING if local else ERROR)

    work = tmp / "rebuild"
    work.mkdir()
    for name in (manifest_mod.ONNX, manifest_mod.SETTINGS):
        shutil.copyfile(d / name, work / name)
    compiled, vk, pk = work / manifest_mod.COMPILED, work / manifest_mod.VK, work / manifest_mod.PK
    log = work / "rebuild.log"
    try:
        need = resources.estimate(CircuitSettings.load(work / manifest_mod.SETTINGS))
        short = resources.shortfall(need)
        if short:  # (a LeNet-5 proving key is 4.4 GB: set up where the owner could)
            raise ResourceLimitError(f"cannot rebuild {d} here: {short}")
        native.call(__import__("ezkl").compile_circuit, str(work / manifest_mod.ONNX), str(compiled),
                    str(work / manifest_mod.SETTINGS), log_path=log)
        with resources.watchdog("rebuilding the verifying key"):
            setup(compiled, srs_path, vk, pk, log)
    except ResourceLimitError:
        raise
    except (native.NativeFailure, ZkinferError, KeyError, TypeError, ValueError) as e:
        r.add("rebuild", False, f"network.onnx with settings.json does not compile and set up: {e}")
        return out
    pk.unlink(missing_ok=True)
    out.update(vk=vk, vk_sha256=sha256_file(vk), compiled=compiled, settings_path=work / manifest_mod.SETTINGS,
               srs=srs_path)
    r.add("rebuild", True, f"compiled network.onnx with settings.json and ran ezkl setup against {srs_path.name} in "
          f"a scratch folder (no published key used)", INFO)
    return out


def _identity_checks(r: AuditReport, manifest: dict, rec: dict, rebuilt: dict, d: Path) -> None:
    arts = manifest.get("artifacts") or {}
    vk_manifest = (arts.get(manifest_mod.VK) or {}).get("sha256")
    vk = rebuilt.get("vk_sha256")
    reg_vk = str(rec["vkHash"])[2:]
    r.add("vk vs manifest", vk is not None and vk == vk_manifest,
          f"rebuilt vk.key sha256 {str(vk)[:16]}...; the manifest records {str(vk_manifest)[:16]}...")
    r.add("vk vs registry", vk is not None and vk == reg_vk,
          f"rebuilt vk.key sha256 {str(vk)[:16]}...; the registry records {reg_vk[:16]}...")
    source = d / manifest_mod.SOURCE_ONNX
    if source.is_file():
        s = sha256_file(source)
        r.add(manifest_mod.SOURCE_ONNX, s == (arts.get(manifest_mod.SOURCE_ONNX) or {}).get("sha256"),
              f"sha256 {s[:16]}... against the manifest's record")
    # The id as these files give it: the manifest's content with the hashes of the published graph and the
    # rebuilt key (source.onnx's hash, the fidelity gate's reference, is the manifest's unless published).
    try:
        data = json.loads(json.dumps(manifest))
        data["artifacts"][manifest_mod.ONNX]["sha256"] = rebuilt["onnx_sha256"]
        if vk:
            data["artifacts"][manifest_mod.VK]["sha256"] = vk
        if source.is_file():
            data["artifacts"][manifest_mod.SOURCE_ONNX]["sha256"] = sha256_file(source)
        recomputed = manifest_mod.circuit_id(data, rebuilt["settings"])
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        r.add("manifest identity", False, f"manifest.json is incomplete ({type(e).__name__}: {e})")
        return
    recorded = manifest.get("circuit_id")
    reg = rec["circuitId"][2:] if rec.get("circuitId") else None
    r.add("manifest identity", recomputed == recorded,
          f"circuit id recomputed from manifest.json, settings.json, network.onnx and the rebuilt vk: "
          f"{recomputed[:16]}...; the manifest records {str(recorded)[:16]}...")
    r.add("circuit id vs registry", recomputed == reg,
          f"recomputed {recomputed[:16]}...; the registry records {str(reg)[:16]}...")


def _layout_checks(r: AuditReport, manifest: dict, rec: dict, rebuilt: dict) -> None:
    try:
        m = manifest_mod.Manifest(path=r.artifacts_dir / manifest_mod.MANIFEST, data=manifest, sha256="")
        lay = registry_layout(m).record()
        scales = set(manifest["circuit"]["output_scales"])
        visibility = manifest["circuit"]["visibility"]["param"]
    except (ZkinferError, KeyError, TypeError) as e:
        r.add("instance layout", False, f"the manifest gives no layout a gate can use ({e})")
        return
    reg_lay = {k: rec["instanceLayout"].get(k) for k in lay}
    r.add("instance layout", reg_lay == lay and scales == {rec["outputScale"]},
          f"registry {reg_lay}, output scale {rec['outputScale']}; the circuit {lay}, output scale(s) {sorted(scales)}")
    wc = rec["weightCommitment"]
    if visibility == "fixed":
        r.add("weight commitment", lay["paramHashes"] == 0 and wc == ZERO32,
              f"fixed weights: they are the verifying key's fixed columns (checked by its hash); the registry "
              f"records {'no' if wc == ZERO32 else 'a'} weight commitment ({wc[:18]}...)")
        return
    if visibility != "hashed":
        r.add("weight commitment", False, f"{visibility} weights: free witness values, any weights verify")
        return
    hashes = _param_hashes(manifest, rebuilt)
    if hashes is None:
        r.add("weight commitment", False, "not checked: the circuit could not be rebuilt and run")
        return
    computed = "0x" + keccak(words(felt_to_uint256(h) for h in hashes)).hex()
    recorded = manifest["circuit"].get("param_hashes") or []
    r.add("weight commitment", computed == wc and list(hashes) == list(recorded),
          f"keccak256 of the {len(hashes)} param hash(es) a witness of the rebuilt circuit carries: "
          f"{computed[:18]}...; "
          f"the registry records {wc[:18]}...; the manifest's hashes {'agree' if hashes == recorded else 'differ'}")


def _witness(manifest: dict, rebuilt: dict) -> dict | None:
    """A witness of the rebuilt circuit on an all-zero input (of the manifest's input shapes: other shapes do not
    run), once: what its public instances are and the weights' hashes do not depend on the input."""
    from .witness import generate

    if "witness" not in rebuilt:
        rebuilt["witness"] = None
        if rebuilt.get("compiled"):
            try:
                zeros = [[0.0] * math.prod(s) for s in manifest["circuit"]["input_shapes"]]
                rebuilt["witness"] = generate(zeros, rebuilt["compiled"],
                                              log_path=rebuilt["compiled"].parent / "rebuild.log").raw
            except (ZkinferError, KeyError, TypeError, ValueError):
                pass
    return rebuilt["witness"]


def _param_hashes(manifest: dict, rebuilt: dict) -> list[str] | None:
    """The Poseidon hashes of the weights a witness of the rebuilt circuit carries."""
    w = _witness(manifest, rebuilt)
    return None if w is None else list((w.get("processed_params") or {}).get("poseidon_hash") or [])


def _circuit_checks(r: AuditReport, manifest: dict, rebuilt: dict) -> None:
    """The manifest's description of the circuit (which the registry's layout and scale come from) against the
    rebuilt circuit itself: its settings (visibility, scales, logrows) and its witness's public instances."""
    from .layout import instance_layout

    try:
        c = manifest["circuit"]
        settings = CircuitSettings.load(rebuilt["settings_path"])
        fields = {f: (c.get(f), manifest_mod._settings_value(rebuilt["settings"], f))
                  for f in manifest_mod.SETTINGS_FIELDS}
        fields["visibility"] = (c.get("visibility"), settings.visibility)
        w = _witness(manifest, rebuilt)
        if w is not None:
            lay = instance_layout(w, settings.visibility, sum(math.prod(s) for s in c["input_shapes"]))
            fields["instance_layout"] = (c.get("instance_layout"), lay)
    except (ZkinferError, KeyError, TypeError, ValueError, AttributeError) as e:
        r.add("circuit description", False, f"the manifest's circuit section is incomplete ({type(e).__name__}: {e})")
        return
    wrong = [f for f, (said, real) in fields.items() if said != real]
    if w is None:
        wrong.append("input_shapes (the rebuilt circuit does not run on inputs of those shapes)")
    r.add("circuit description", not wrong,
          (f"the manifest's {', '.join(sorted(fields))} agree with the rebuilt circuit (its settings, and the "
           "public instances of a witness on a zero input)") if not wrong else
          f"the manifest's description differs from the rebuilt circuit: {', '.join(wrong)}")


def _registry_code(chain, registry: str) -> tuple[bool, str]:
    ok, detail, severity, _ = compare_code(evm.contract_artifact("ModelRegistry"), chain.code(registry),
                                           f"registry {registry}:")
    return ok, detail, severity


def _verifier_checks(r: AuditReport, chain, verifier: str, rebuilt: dict, tmp: Path, recorded_mode) -> None:
    """The deployed verifier against the one rendered from the rebuilt vk: in the mode the deployments file
    records, else each mode in `deploy`'s order until one matches."""
    deployed = chain.code(verifier)
    modes = [evm.VerifierMode(recorded_mode)] if recorded_mode else list(evm.VerifierMode)
    last = None
    for mode in modes:
        rendered = evm.render_verifier(rebuilt["vk"], rebuilt["settings_path"], rebuilt["srs"], mode,
                                       base_path=tmp)
        if mode is evm.VerifierMode.REUSABLE:
            last = _reusable_checks(chain, verifier, deployed, rendered)
        else:
            what = f"verifier {verifier} ({mode.value}):"
            ok, detail, severity, imm = compare_code(rendered.artifact, deployed, what)
            last = [("verifier code", ok, detail, severity)]
            if mode is evm.VerifierMode.SPLIT_VK and imm:
                last.append(_vk_data_check(chain, imm, rendered))
        if last[0][1] or last[0][3] == WARNING:
            break
    for check in last:
        r.add(*check)


def _vk_data_check(chain, imm: dict[str, bytes], rendered) -> tuple:
    [value] = imm.values()
    address = to_checksum_address(value[-20:])
    code = chain.code(address)
    want = evm.vk_data_runtime(rendered.split.vk)
    return ("vk data contract", code == want,
            f"{address} (the verifier's immutable): code {'equals' if code == want else 'is not'} 0x00 then the "
            f"rebuilt key's {len(rendered.split.vk):,} bytes")


def _reusable_checks(chain, adapter: str, deployed: bytes, rendered) -> list[tuple]:
    """The adapter (this clone's ReusableVerifierAdapter), the shared verifier it calls (ezkl's reusable
    verifier rendered here), and the VKA its data contract holds (rendered from the rebuilt vk)."""
    art = _fresh_artifact("ReusableVerifierAdapter")
    ok, detail, severity, _ = compare_code(art, deployed, f"adapter {adapter} (reusable):")
    checks = [("verifier code", ok, detail, severity)]
    if not ok:
        return checks
    a = chain.contract(adapter, art["abi"])
    shared = chain.call(a.functions.reusableVerifier(), "reading the adapter")
    store = chain.call(a.functions.vkaStore(), "reading the adapter")
    digest = "0x" + bytes(chain.call(a.functions.vkaDigest(), "reading the adapter")).hex()
    ok2, detail2, sev2, _ = compare_code(rendered.artifact, chain.code(shared), f"reusable verifier {shared}:")
    checks.append(("reusable verifier code", ok2, detail2, sev2))
    want = b"\x00" + b"".join(bytes.fromhex(w[2:]) for w in rendered.side["words"])
    code = chain.code(store)
    checks.append(("vka", code == want and digest == rendered.side["digest"],
                   f"the adapter's VKA store {store} holds {'the' if code == want else 'not the'} "
                   f"{len(rendered.side['words'])} VKA words rendered from the rebuilt vk; digest {digest[:18]}... "
                   f"{'equals' if digest == rendered.side['digest'] else 'is not'} theirs"))
    return checks


def _fresh_artifact(name: str) -> dict:
    """One of the project's contracts as this clone's sources compile (with its immutables' offsets, which
    artifacts built before they were recorded lack)."""
    art = evm.contract_artifact(name)
    return art if "immutableReferences" in art else _compiled_sources()[name]


@functools.cache
def _compiled_sources() -> dict[str, dict]:
    return evm.compile_solidity(evm.contract_sources(), evm.CONTRACT_SETTINGS, base_path=evm.CONTRACTS_DIR,
                                warnings_are_errors=True)


def _activity_checks(r: AuditReport, chain, rec: dict, model_id: int, book: dict | None) -> None:
    r.add("model active", rec["active"], "active in the registry" if rec["active"] else "revoked in the registry")
    also = []
    if book:
        also = [c["address"] for n, c in book["contracts"].items() if n.split("/")[-1] in GATE_CONTRACTS]
    gate_abi = evm.contract_artifact("RiskAdjustedLending")["abi"]
    accepting = []
    for g in _accepting_gates(chain, model_id, also):
        try:
            acc = chain.call(chain.contract(g, gate_abi).functions.acceptedModel(model_id), "reading a gate")
        except ZkinferError:
            continue
        if not acc[0]:
            continue
        kind = "a contract that is none of zkinfer's gates compiled here"
        for name in GATE_CONTRACTS:
            if compare_code(_fresh_artifact(name), chain.code(g), "")[0]:
                kind = name
                break
        accepting.append(f"{g} ({kind}, output {acc[1]})")
    r.add("accepting gates", bool(accepting),
          ("accepted by " + "; ".join(accepting)) if accepting else "no gate accepts it", WARNING)


# ---------------------------------------------------------------------------------------------------- events

def events(rpc_url: str, *, deployments: str | os.PathLike | None = None, registry: str | None = None,
           model_id: int | None = None, circuit: str | None = None) -> list[dict]:
    """Every action a gate took with the model: each StatementConsumed(…, modelId, …) log, with the
    submission's subjects and the proven outputs decoded from its calldata (per slot, as real numbers at the
    registry's output scale) and the gate's other events in that transaction (RateUpdated, ...)."""
    from .chain.client import Chain

    chain = Chain(rpc_url)
    book = _deployments(chain.chain_id, deployments)
    if registry is None:
        if book is None or "ModelRegistry" not in book["contracts"]:
            raise UsageError("no registry: give --deployments FILE (recording a ModelRegistry) or --registry ADDRESS")
        registry = book["contracts"]["ModelRegistry"]["address"]
    if model_id is None:
        entry = _book_model(book, {"name": circuit}, None)
        if entry is None:
            raise UsageError("no model id: give --model-id N")
        model_id = int(entry[1]["modelId"])
    rec = _registry_record(chain, to_checksum_address(registry), model_id)
    lay, scale = rec["instanceLayout"], rec["outputScale"]
    gate_abi = evm.contract_artifact("RiskAdjustedLending")["abi"]
    topic = "0x" + keccak(text="StatementConsumed(bytes32,uint256,address)").hex()
    logs = chain.w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest",
                                  "topics": [topic, None, "0x" + model_id.to_bytes(32, "big").hex()]})
    abis = [evm.contract_artifact(n)["abi"] for n in GATE_CONTRACTS]
    out = []
    for log in logs:
        tx = chain.w3.eth.get_transaction(log["transactionHash"])
        gate = chain.contract(log["address"], gate_abi)
        subjects, outputs = [], None  # None: sent through another contract, whose calldata is not the gate's
        if tx["to"] and to_checksum_address(tx["to"]) == to_checksum_address(log["address"]):
            _fn, args = gate.decode_function_input(tx["input"])
            instances = list(args["instances"])
            slots, per_in, per_out = lay["slots"], lay["inputsPerSlot"], lay["outputsPerSlot"]
            start = (slots if lay["hashedInputs"] else 0) + lay["paramHashes"] + slots * per_in
            outputs = [[_signed(v) / 2 ** scale for v in instances[start + i * per_out: start + (i + 1) * per_out]]
                       for i in range(slots)]
            subjects = ["0x" + bytes(s).hex() for s in args["subjects"]]
        receipt = chain.w3.eth.get_transaction_receipt(log["transactionHash"])
        effects = [e for e in (_decode_event(chain.w3.codec, abis, lg) for lg in receipt["logs"]
                               if lg["address"] == log["address"] and lg["logIndex"] != log["logIndex"]) if e]
        out.append({"block": log["blockNumber"], "transaction": "0x" + bytes(log["transactionHash"]).hex(),
                    "gate": to_checksum_address(log["address"]), "modelId": model_id,
                    "statementKey": "0x" + bytes(log["topics"][1]).hex(),
                    "submitter": to_checksum_address(bytes(log["topics"][3])[-20:]),
                    "subjects": subjects, "outputs": outputs, "effects": effects})
    return out


def _signed(v: int) -> int:
    return v - FIELD_MODULUS if v > HALF_FIELD else v


def _decode_event(codec, abis: list[list[dict]], log) -> dict | None:
    from web3._utils.events import get_event_data
    from web3.exceptions import MismatchedABI

    from .chain.client import display

    topic0 = bytes(log["topics"][0]) if log["topics"] else b""
    for abi in abis:
        for item in abi:
            if item.get("type") != "event":
                continue
            sig = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
            if keccak(text=sig) != topic0:
                continue
            try:
                ev = get_event_data(codec, item, log)
            except MismatchedABI:
                continue
            return {"event": item["name"], **{k: display(v) for k, v in ev["args"].items()}}
    return None


def events_text(actions: list[dict]) -> str:
    """What `zkinfer audit --events` prints: one block per action."""
    if not actions:
        return "no gate has acted with this model"
    lines = []
    for a in actions:
        lines.append(f"block {a['block']}  tx {a['transaction']}  gate {a['gate']}  submitter {a['submitter']}")
        if a["outputs"] is None:
            lines.append("  submitted through another contract: its calldata is not decoded here")
        for i, (s, o) in enumerate(zip(a["subjects"], a["outputs"] or [], strict=False)):
            lines.append(f"  slot {i}: subject {s}  proven outputs {o}")
        for e in a["effects"]:
            args = ", ".join(f"{k}={v}" for k, v in e.items() if k != "event")
            lines.append(f"  {e['event']}({args})")
    return "\n".join(lines)

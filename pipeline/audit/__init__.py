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

Modules, each importing only those above it:

    report      `AuditReport`: its checks, their severities, the exit code and the text
    deployment  the deployments file, the registry's record of the model (`_registry_record`), the chain's logs
    contracts   deployed code against this clone's (`compare_code`, immutables): verifier, registry, gates
    rebuild     the published files read and checked, the circuit compiled and set up in a scratch folder
    circuit     the rebuilt circuit's identity, description, layout and weights against manifest and registry
    checklist   `audit`: all of the above, in the report's order
    actions     `events` and `events_text` (`zkinfer audit --events`)
"""

from .actions import events, events_text
from .checklist import audit
from .report import AuditReport

__all__ = ["AuditReport", "audit", "events", "events_text"]

"""The prover node (`zkinfer serve`): a standing service that turns a gate's postings into proven actions.

    node = ProverNode("runs/node", NodeConfig(circuit_dir=Path("circuits/credit_risk"), rpc_url=url,
                                              features="feeds/borrowers.jsonl", deployments_dir="deployments"))
    node.start(); ...; node.stop()        # or node.run() in the foreground; node.step() for one pass
    status("runs/node")                   # backlog, latency, throughput, failures and why

Modules, in the order a posting meets them:

    feeds    where the raw features behind a posted commitment are found (JSONL/CSV file or folder, SQLite)
    store    DIR/node.sqlite: the block cursor, every posting seen and what became of it, incidents
    node     the loop: follow events, match features, prove (pipeline.jobs on DIR/jobs), act; status
    acting   checking postings against the gate, submitting, settling refusals, recovering after a kill
    metrics  Prometheus-style text of the status, served on loopback if asked
"""

from .feeds import FeatureRow, FeatureSource, FileSource, SqliteSource, open_source, subject_word
from .node import NodeConfig, ProverNode, StepResult, status
from .store import STATES, NodeStore

__all__ = ["STATES", "FeatureRow", "FeatureSource", "FileSource", "NodeConfig", "NodeStore", "ProverNode",
           "SqliteSource", "StepResult", "open_source", "status", "subject_word"]

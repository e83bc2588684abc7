"""The feature publisher's side of a node deployment: write a subject's features where provers read them,
then post their commitment on the gate. The demo, the tests and the benchmark drive the node with it; a
real oracle does the same two steps from its own data.

The row is written (and fsynced) before the posting is sent, so a prover that sees the posting can always
find its features; a posting whose row never appears is what the node reports as a mismatch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .feeds import subject_word


class FeaturePublisher:
    def __init__(self, circuit_dir: str | os.PathLike, rpc_url: str, feature_file: str | os.PathLike, *,
                 gate: str | None = None, deployments_dir: str | os.PathLike = "deployments",
                 private_key: str | None = None):
        from ..chain import Chain, FeatureCommitter, open_gate

        self.committer = FeatureCommitter(circuit_dir)
        self.chain = Chain(rpc_url, private_key)
        self.handle = open_gate(self.chain, gate or self.committer.manifest.name, deployments_dir)
        self.feature_file = Path(feature_file)
        self.feature_file.parent.mkdir(parents=True, exist_ok=True)

    def write_row(self, subject, features: list[float], salt: str | None = None) -> str:
        """Append the subject's row to the feature file (durably); returns the subject as a 32-byte word."""
        word = subject_word(subject)
        row = {"subject": word, "features": [float(v) for v in features], **({"salt": salt} if salt else {})}
        with open(self.feature_file, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return word

    def post(self, subject, commitment: str):
        """Post a commitment (hex) for a subject; returns the `chain.Posting`."""
        from ..chain import post_commitment

        return post_commitment(self.handle, bytes.fromhex(subject_word(subject)[2:]), bytes.fromhex(commitment[2:]))

    def publish(self, subject, features: list[float], salt: str | None = None):
        """Write the row, then post its commitment: one new posting for the subject."""
        word = self.write_row(subject, features, salt)
        return self.post(word, self.committer(list(features), salt))

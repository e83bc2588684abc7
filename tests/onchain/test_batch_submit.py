"""Proofs from `zkinfer batch` on a K-slot circuit, on chain: one --subject per real slot, in slot order;
a padded slot repeats the last borrower, whose one posting the gate acts on once."""

from __future__ import annotations

import json

import pytest
from onchain_helpers import address

from pipeline import chain, jobs
from pipeline.errors import UsageError

pytestmark = pytest.mark.slow

# PDs of the `credit` stand-in: sigmoid(x0 + x1/2 - x2/2 + x3/4).
ROWS = {"ann": [0.0, 0.0, 0.0, 0.0], "ben": [0.25, 0.0, 0.0, 0.0], "cat": [-1.0, 0.5, 0.5, -1.0]}
TERMS = {"baseRateBps": 200, "slopeBps": 1500, "maxRateStepBps": 10_000, "initialRateBps": 800}


def test_batch_pack_proofs_submit_with_one_subject_per_borrower(anvil, circuits, tmp_path):
    k2 = circuits["credit_k2"]  # two borrowers per proof, one [2, 4] public input
    inputs = tmp_path / "borrowers.jsonl"
    inputs.write_text("".join(json.dumps({"id": k, "input_data": [v]}) + "\n" for k, v in ROWS.items()))
    summary = jobs.run_batch(k2.dir, inputs, tmp_path / "out")
    assert (summary.proved, summary.proofs, summary.padded_now) == (3, 2, 1)

    # The proofs in submission order, and their borrowers in slot order (padding takes no subject).
    files = sorted((tmp_path / "out" / "proofs").glob("*.json"), key=lambda f: json.loads(f.read_text())["slots"][0]
                   ["labels"] != ["ann"])
    slots = [json.loads(f.read_text())["slots"] for f in files]
    assert [[s["labels"] for s in ss] for ss in slots] == [[["ann"], ["ben"]], [["cat"], ["cat"]]]
    subjects = [address(s["labels"][0]) for ss in slots for s in ss if not s["padding"]]

    ddir = tmp_path / "deployments"
    chain.deploy(k2.dir, anvil.rpc_url, "lending", deployments_dir=ddir, terms=TERMS)
    with pytest.raises(UsageError, match=r"covers 1 borrower\(s\) \(1 padding slot\(s\) repeat the last\)"):
        chain.post_features(files[1:], anvil.rpc_url, subjects=[], deployments_dir=ddir)  # before any transaction
    postings = chain.post_features(files, anvil.rpc_url, subjects=subjects, deployments_dir=ddir)
    assert [p.subject[-40:] for p in postings] == [s[2:].lower() for s in subjects]  # cat posted once

    # One --subject too many (say, one for the padding slot): refused before any transaction is sent.
    with pytest.raises(UsageError, match="1 --subject value"):
        chain.submit(files, anvil.rpc_url, subjects=[*subjects, subjects[-1]], deployments_dir=ddir)
    gate = chain.open_gate(chain.Chain(anvil.rpc_url), k2.name, ddir).gate
    assert gate.functions.rateOf(address("ann")).call() == 800

    ann_ben, cat = chain.submit(files, anvil.rpc_url, subjects=subjects, deployments_dir=ddir)
    outputs = {s["labels"][0]: s["outputs"][0][0] for ss in slots for s in ss}
    for effect, who in zip(ann_ben.effects, ["ann", "ben"], strict=True):
        assert effect["borrower"] == address(who)
        assert abs(effect["newRateBps"] - (200 + 1500 * outputs[who])) <= 1
    [only] = cat.effects  # the padded slot: the same borrower and posting, acted on once
    assert only["borrower"] == address("cat")
    assert only["newRateBps"] == gate.functions.rateOf(address("cat")).call() != 800

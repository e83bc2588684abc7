"""The chain: a local anvil node, deployments, feature posting and proof submission (web3.py).

    node = chain_up()                                        # anvil from the pinned npm package
    d = deploy("circuits/credit_risk", node.rpc_url, consumer="lending")
    post_features(["proof.json"], node.rpc_url, subjects=[borrower])  # the oracle's part (withdraw_features)
    [s] = submit(["proof.json"], node.rpc_url, subjects=[borrower])   # s.effects: the new rate
    suspend_model("credit_risk", node.rpc_url)                # the guardian's breaker (resume_model: the owner)
    chain_down()

Modules, each used through the names re-exported here:

    node          the local anvil: started in the background with mainnet's limits, stopped from any process
    client        `Chain`: web3 connection, signing ($ZKINFER_PRIVATE_KEY, or anvil's dev accounts on 31337),
                  transactions, and custom errors decoded from the recorded ABIs (no compiler needed)
    deployments   the book ``deployments/<chainId>.json``, written after every transaction
    deploy        a circuit's verifier, the registry and a gate; registering and accepting the model
    registry      reading a model version's record (`registered_model`: circuit id, vk hash, verifier, ...)
    gate          feature commitments, subjects, posting and withdrawing features, submitting proofs,
                  verification gas
    breaker       the model breaker: a guardian suspends a model version on its gate, the owner resumes it

Which proof instance is which (and so what a slot's commitment is) comes from `pipeline.layout`; proof
files are read with `pipeline.prooffile`.
"""

from ..layout import slot_commitments
from .breaker import BreakerStatus, breaker_status, model_suspended, resume_model, set_guardian, suspend_model
from .client import PRIVATE_KEY_ENV, Chain, ContractRevertError, RevertDecoder
from .deploy import (
    CONSUMERS,
    DEFAULT_BOND_TERMS,
    DEFAULT_LENDING_TERMS,
    DEFAULT_MAX_FEATURE_AGE_S,
    DEFAULT_MIN_POSTING_INTERVAL_S,
    OUTPUT_DECIMALS,
    Deployment,
    deploy,
    params_commitment,
)
from .deployments import (
    DEFAULT_DEPLOYMENTS_DIR,
    DEPLOYMENTS_SCHEMA,
    DeployedContract,
    DeploymentsBook,
    deployments_path,
    load_deployments,
)
from .gate import (
    GATE_EFFECT_EVENTS,
    FeatureCommitter,
    GateHandle,
    Posting,
    Submission,
    feature_commitment,
    open_gate,
    post_commitment,
    post_features,
    subjects_for,
    submit,
    submit_calldata,
    verification_gas,
    withdraw_features,
)
from .node import (
    DEFAULT_STATE_DIR,
    LOCAL_CHAIN_ID,
    STATE_DIR_ENV,
    LocalChain,
    _free_port,  # noqa: F401  (tests pick unused ports with it)
    chain_down,
    chain_up,
    local_chain,
    state_dir,
)
from .registry import RegisteredModel, registered_model

__all__ = [
    "CONSUMERS", "DEFAULT_BOND_TERMS", "DEFAULT_DEPLOYMENTS_DIR", "DEFAULT_LENDING_TERMS", "DEFAULT_MAX_FEATURE_AGE_S",
    "DEFAULT_MIN_POSTING_INTERVAL_S", "DEFAULT_STATE_DIR", "DEPLOYMENTS_SCHEMA", "GATE_EFFECT_EVENTS",
    "LOCAL_CHAIN_ID", "OUTPUT_DECIMALS", "PRIVATE_KEY_ENV", "STATE_DIR_ENV", "BreakerStatus", "Chain",
    "ContractRevertError", "DeployedContract", "Deployment", "DeploymentsBook", "FeatureCommitter", "GateHandle",
    "LocalChain", "Posting", "RegisteredModel", "RevertDecoder", "Submission", "breaker_status", "chain_down",
    "chain_up", "deploy", "deployments_path", "feature_commitment", "load_deployments", "local_chain",
    "model_suspended", "open_gate", "params_commitment", "post_commitment", "post_features", "registered_model",
    "resume_model", "set_guardian", "slot_commitments", "state_dir", "subjects_for", "submit", "submit_calldata",
    "suspend_model", "verification_gas", "withdraw_features",
]

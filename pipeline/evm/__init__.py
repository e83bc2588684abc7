"""Solidity: the pinned npm toolchain, compilation with solcjs, and Halo2 verifiers rendered by ezkl.

    build_verifier("circuits/credit_risk")                     # DIR/evm/Verifier.sol + Verifier.json
    build_verifier("circuits/credit_k64", mode="split-vk")     # the verifying key in a data contract
    build_verifier("circuits/lenet", mode="reusable")          # shared reusable verifier + this circuit's VKA
    choose_verifier("circuits/credit_k64")                     # the first of the three that fits EIP-170
    build_contracts()                                          # verifier_contracts/src -> verifier_contracts/out

Everything runs offline: the compiler is npm's `solc` (solcjs, pinned in package.json), never a download.
Modules, each used through the names re-exported here:

    toolchain    node_modules, the npm binaries (solcjs, anvil), the compiler's version
    solidity     compiler settings, compilation, artifacts (schema ``zkinfer/contract-artifact@1``) and
                 their build-key cache, the project's own contracts; their recorded ABIs without compiling
    verifiers    verifier modes (standard, split-vk, reusable), building one, choosing by EIP-170's limit;
                 the reusable verifier's VKA
    split_vk     the source rewrite that moves the verifying key into a data contract, and that contract
"""

from .solidity import (
    ARTIFACT_SCHEMA,
    CONTRACT_SETTINGS,
    CONTRACTS_DIR,
    CONTRACTS_OUT,
    CONTRACTS_SRC,
    EIP170_MAX_RUNTIME_BYTES,
    VERIFIER_SETTINGS,
    CompilerSettings,
    build_contracts,
    compile_solidity,
    contract_artifact,
    contract_sources,
    exceeds_eip170,
    load_artifact,
    recorded_abis,
)
from .split_vk import (
    SPLIT_VK_FORMAT,
    SPLIT_VK_VERIFIER_CONTRACT,
    VERIFIER_CONTRACT,
    VK_DATA_CONTRACT,
    VK_DATA_SCHEMA,
    SplitVkSource,
    checked_vk,
    load_vk_data,
    split_vk_source,
    vk_data_initcode,
    vk_data_runtime,
)
from .toolchain import NODE_MODULES_ENV, SolidityCompileError, node_modules, npm_binary, solc_version
from .verifiers import (
    AUTO,
    EVM_SUBDIR,
    REUSABLE_VERIFIER_CONTRACT,
    VERIFIER_CHOICES,
    VKA_DECIMALS,
    RenderedVerifier,
    VerifierBuild,
    VerifierChoice,
    VerifierMode,
    build_verifier,
    choose_verifier,
    render_verifier,
    verifier_mode,
    vka_digest,
)

__all__ = [
    "ARTIFACT_SCHEMA", "AUTO", "CONTRACTS_DIR", "CONTRACTS_OUT", "CONTRACTS_SRC", "CONTRACT_SETTINGS",
    "EIP170_MAX_RUNTIME_BYTES", "EVM_SUBDIR", "NODE_MODULES_ENV", "REUSABLE_VERIFIER_CONTRACT", "SPLIT_VK_FORMAT",
    "SPLIT_VK_VERIFIER_CONTRACT", "RenderedVerifier", "VERIFIER_CHOICES", "VERIFIER_CONTRACT", "VERIFIER_SETTINGS",
    "VKA_DECIMALS", "VK_DATA_CONTRACT", "VK_DATA_SCHEMA", "CompilerSettings", "SolidityCompileError",
    "SplitVkSource", "VerifierBuild", "VerifierChoice", "VerifierMode", "build_contracts", "build_verifier",
    "checked_vk", "choose_verifier", "compile_solidity", "contract_artifact", "contract_sources", "exceeds_eip170",
    "load_artifact", "load_vk_data", "node_modules", "npm_binary", "recorded_abis", "render_verifier",
    "solc_version", "split_vk_source", "verifier_mode", "vk_data_initcode", "vk_data_runtime", "vka_digest",
]

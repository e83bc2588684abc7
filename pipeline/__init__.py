"""zkinfer: zero-knowledge verifiable inference.

The package follows a model's journey, one module per stage (pictured in docs/architecture.md):

    export      ONNX inspection (which operators, which shapes) and exporters
    srs         the KZG structured reference string: a ceremony file, or a cached dev SRS (insecure)
    compile     ezkl settings, calibration and circuit compilation
    fidelity    the circuit's outputs against onnxruntime on held-out inputs
    keys        proving and verifying keys
    build       the whole circuit build, incremental, with its content-hashed manifest
    manifest    the manifest: what was built, from what, and checks that artifacts still match it
    witness     the circuit run on one input, its range check
    prove       one input (or K rows) -> a proof file
    verify      proof verification against the circuit's verifying key
    evm/        Solidity: the npm toolchain, compilation, verifiers (standard, split-vk, reusable)
    chain/      a local anvil node, the client, deployments, and acting on proofs through gates (web3.py)
    jobs/       batch proving: a SQLite job store, local process pool and Ray backends

Three formats every later stage reads, which import no stage:

    felt        field elements: BN254's modulus, signed decoding, uint256 words, quantization
    layout      which public instance is which: counts, ezkl's order, K slots, the registry's InstanceLayout
    prooffile   the proof file: `ProofFile`, its one reader and its consistency checks

`zoo` (train and export zoo models, `build_zoo_model`), `bench`, `demo` and `pipeline.cli` (a thin click
layer) drive the stages; no stage imports them.
"""

__version__ = "0.1.0"

EZKL_VERSION = "23.0.5"  # pinned: proofs and keys are not portable across ezkl versions


def installed_ezkl_version() -> str:
    """The ezkl version this machine has (its package metadata), which every build and proof must match."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ezkl")
    except PackageNotFoundError:
        return "not installed"


def require_ezkl(expected: str = EZKL_VERSION, what: str = "zkinfer") -> None:
    """UsageError unless the installed ezkl is `expected` (a circuit's, or zkinfer's pin)."""
    from .errors import ArtifactMismatchError

    found = installed_ezkl_version()
    if found != expected:
        raise ArtifactMismatchError(f"{what} needs ezkl {expected}, but this machine has ezkl {found}: keys and "
                                    f"proofs are not portable across ezkl versions (pip install ezkl=={expected})")

"""zkinfer: zero-knowledge verifiable inference.

The package follows a model's journey, one module per stage:

    export      ONNX inspection (which operators, which shapes) and torch export helpers
    srs         the KZG structured reference string: a ceremony file, or a cached dev SRS (insecure)
    compile     ezkl settings, calibration and circuit compilation
    fidelity    the circuit's outputs against onnxruntime on held-out inputs
    keys        proving and verifying keys
    build       the whole circuit build, incremental, with its content-hashed manifest
    manifest    the manifest: what was built, from what, and checks that artifacts still match it
    prove       witness + proof for one input, decoded outputs, EVM calldata
    verify      proof verification against the circuit's verifying key
    evm         Solidity verifier rendering and compilation (pinned solcjs)
    chain       a local anvil node, deployments, and proof submission (web3.py)
    jobs        batch proving: a SQLite job store, local process pool and Ray backends

`pipeline.cli` is a thin click layer over these.
"""

__version__ = "0.1.0"

EZKL_VERSION = "23.0.5"

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IHalo2Verifier
/// @notice What a proof-gated contract calls to check a circuit's proofs: ezkl's generated `Halo2Verifier`
///         has exactly this function, and {ReusableVerifierAdapter} offers it on top of ezkl's reusable verifier.
/// @dev ezkl's verifiers revert on an invalid proof rather than returning false: callers must treat a revert
///      and a `false` alike. Gates call it with STATICCALL (see {InferenceGate}): an implementation must not
///      change state, and must return exactly one ABI word.
interface IHalo2Verifier {
    /// @notice Checks a proof of the circuit against its public instances.
    /// @param proof The proof bytes (ezkl's `hex_proof`).
    /// @param instances The public instances, field elements in ezkl's order.
    /// @return True when the proof is valid; an invalid proof reverts or returns false.
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external returns (bool);
}

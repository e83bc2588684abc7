// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IHalo2VerifierReusable
/// @notice ezkl's circuit-independent Halo2 verifier (`Halo2VerifierReusable`, experimental in ezkl): one
///         contract per chain; each circuit's verifying-key artifact (VKA) is registered on it once and passed
///         with every proof.
interface IHalo2VerifierReusable {
    /// @notice Registers a verifying-key artifact. Permissionless: registration only says the VKA is
    ///         well-formed calldata; which VKA a consumer trusts is the consumer's decision.
    /// @param vka The VKA's 32-byte words.
    /// @return vkaDigest keccak256 over the words, back to back.
    function registerVka(bytes32[] calldata vka) external returns (bytes32 vkaDigest);

    /// @notice Checks a proof against its instances and a registered VKA; reverts when it is invalid.
    /// @dev Only the first return word (success) is declared: ezkl's verifier appends the VKA digest and
    ///      rescaled instances in a layout that is not the ABI encoding of `(bool, bytes32, int256[])`.
    /// @param proof The proof bytes (ezkl's `hex_proof`).
    /// @param instances The public instances, field elements in ezkl's order.
    /// @param vka The circuit's registered VKA words.
    /// @return success True when the proof is valid.
    function verifyProof(bytes calldata proof, uint256[] calldata instances, bytes32[] calldata vka)
        external
        returns (bool success);
}

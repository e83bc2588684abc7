// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IHalo2Verifier} from "./interfaces/IHalo2Verifier.sol";
import {IHalo2VerifierReusable} from "./interfaces/IHalo2VerifierReusable.sol";

/// @title ReusableVerifierAdapter
/// @notice One circuit's verifier on top of ezkl's shared reusable verifier: for circuits whose own verifier
///         exceeds EIP-170's 24,576-byte code limit. It registers the circuit's verifying-key artifact (VKA)
///         on the reusable verifier, keeps the VKA as the code of a data contract (reading it back costs a few
///         thousand gas, against hundreds of thousands for storage), and offers {IHalo2Verifier}, so the
///         registry and gates treat both kinds of verifier alike.
/// @dev The VKA fixes the circuit: a proof of another circuit fails against it. The data contract's code is
///      a STOP byte (so calling it does nothing) followed by the VKA words.
contract ReusableVerifierAdapter is IHalo2Verifier {
    /// @notice ezkl's reusable verifier the proofs are checked by.
    IHalo2VerifierReusable public immutable reusableVerifier;
    /// @notice The contract whose code holds the VKA words (after one STOP byte).
    address public immutable vkaStore;
    /// @notice keccak256 of the VKA words: the key the reusable verifier registered them under.
    bytes32 public immutable vkaDigest;
    /// @notice How many 32-byte words the VKA has.
    uint256 public immutable vkaWordCount;

    /// @dev Creation code that returns everything after itself as the new contract's code:
    ///      PUSH4 <size> DUP1 PUSH1 0x0e PUSH1 0 CODECOPY PUSH1 0 RETURN (14 bytes), the size spliced in.
    bytes1 private constant PUSH4 = 0x63;
    bytes9 private constant COPY_AND_RETURN = 0x80600e6000396000f3;
    bytes1 private constant STOP = 0x00;

    /// @notice The VKA has no words.
    error EmptyVka();
    /// @notice The data contract holding the VKA could not be created (e.g. the VKA exceeds the code limit).
    error VkaStoreFailed();
    /// @notice The reusable verifier registered the VKA under an unexpected digest.
    error VkaDigestMismatch(bytes32 registered, bytes32 expected);

    /// @param verifier ezkl's reusable verifier.
    /// @param words The circuit's VKA words (zkinfer's `evm/vka.json`).
    constructor(IHalo2VerifierReusable verifier, bytes32[] memory words) {
        if (words.length == 0) revert EmptyVka();
        bytes32 expected = keccak256(abi.encodePacked(words));
        bytes32 registered = verifier.registerVka(words);
        if (registered != expected) revert VkaDigestMismatch(registered, expected);

        bytes memory code = abi.encodePacked(STOP, words);
        bytes memory initCode = abi.encodePacked(PUSH4, uint32(code.length), COPY_AND_RETURN, code);
        address store;
        assembly ("memory-safe") {
            store := create(0, add(initCode, 0x20), mload(initCode))
        }
        if (store == address(0)) revert VkaStoreFailed();

        reusableVerifier = verifier;
        vkaStore = store;
        vkaDigest = expected;
        vkaWordCount = words.length;
    }

    /// @notice Checks a proof of this adapter's circuit against its public instances.
    /// @param proof The proof bytes (ezkl's `hex_proof`).
    /// @param instances The public instances, field elements in ezkl's order.
    /// @return True when the proof is valid; the reusable verifier reverts on an invalid one. Changes no state
    ///         (neither does ezkl's verifyProof), so gates may call it with STATICCALL.
    function verifyProof(bytes calldata proof, uint256[] calldata instances) external returns (bool) {
        return reusableVerifier.verifyProof(proof, instances, vka());
    }

    /// @notice The circuit's VKA words.
    /// @return words The words, as registered.
    function vka() public view returns (bytes32[] memory words) {
        words = new bytes32[](vkaWordCount);
        address store = vkaStore;
        assembly ("memory-safe") {
            // Skip the leading STOP byte.
            extcodecopy(store, add(words, 0x20), 1, mul(mload(words), 0x20))
        }
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IHalo2Verifier} from "../../src/interfaces/IHalo2Verifier.sol";
import {InstanceLayout} from "../../src/lib/InstanceLayout.sol";
import {FixedPointFelt} from "../../src/lib/FixedPointFelt.sol";

/// @title MockVerifier
/// @notice A stand-in for a circuit's ezkl verifier in tests of the gate's own logic (model acceptance, subject
///         binding, freshness, weights, replay, pausing, the consumers' rules). It accepts exactly the proof
///         `MockProofs.proofFor(instances)` -- so a proof is bound to its instances, as a real one is -- and can
///         be switched to return false or to revert, the two ways ezkl verifiers refuse. The real ezkl verifier,
///         with real proofs, is exercised by the Python on-chain tests (tests/onchain) on anvil.
/// @dev `view`: the gate may call it with STATICCALL.
contract MockVerifier is IHalo2Verifier {
    enum Mode {
        CheckBinding,
        ReturnFalse,
        Revert
    }

    Mode public mode;

    function setMode(Mode mode_) external {
        mode = mode_;
    }

    function verifyProof(bytes calldata proof, uint256[] calldata instances) external view returns (bool) {
        if (mode == Mode.Revert) revert("mock verifier: invalid proof");
        if (mode == Mode.ReturnFalse) return false;
        return keccak256(proof) == keccak256(MockProofs.proofFor(instances));
    }
}

/// @notice The one proof `MockVerifier` accepts for a list of instances.
library MockProofs {
    function proofFor(uint256[] memory instances) internal pure returns (bytes memory) {
        return abi.encode(keccak256(abi.encode("mock proof", instances)));
    }
}

/// @notice Fixed-point felts (ezkl's encoding) and layouts shared by the tests.
library Felts {
    uint256 internal constant P = FixedPointFelt.FIELD_MODULUS;

    /// @dev The felt encoding the signed integer v (negative v as P - |v|).
    function encode(int256 v) internal pure returns (uint256) {
        return v >= 0 ? uint256(v) : P - uint256(-v);
    }

    /// @dev Public inputs, `slots` subjects with `inputsPerSlot` inputs each, one output each, fixed weights.
    function publicLayout(uint16 slots, uint16 inputsPerSlot) internal pure returns (InstanceLayout memory) {
        return InstanceLayout({
            slots: slots,
            hashedInputs: false,
            inputsPerSlot: inputsPerSlot,
            outputsPerSlot: 1,
            paramHashes: 0
        });
    }

    /// @dev One slot, hashed inputs (one Poseidon hash instance), `outputs` outputs, one param hash.
    function hashedLayout(uint16 outputs) internal pure returns (InstanceLayout memory) {
        return InstanceLayout({slots: 1, hashedInputs: true, inputsPerSlot: 0, outputsPerSlot: outputs, paramHashes: 1});
    }

    /// @dev The commitment a publisher posts for public inputs.
    function commitment(uint256[] memory inputs) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(inputs));
    }

    function pair(uint256 a, uint256 b) internal pure returns (uint256[] memory xs) {
        xs = new uint256[](2);
        xs[0] = a;
        xs[1] = b;
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Where a proof's public instances sit. ezkl orders them as
///         [input hashes][param hashes][public inputs][public outputs]. A zkinfer circuit proves K >= 1
///         inferences ("slots") at once, one subject each: slot i owns input hash i (hashed inputs: the model
///         has one input tensor per slot) or public inputs [i*inputsPerSlot, (i+1)*inputsPerSlot), and public
///         outputs [i*outputsPerSlot, (i+1)*outputsPerSlot).
struct InstanceLayout {
    uint16 slots; // K: inferences proven at once
    bool hashedInputs; // each slot's inputs are private, committed to by one Poseidon hash instance
    uint16 inputsPerSlot; // public input instances per slot (0 with hashed inputs)
    uint16 outputsPerSlot; // public output instances per slot
    uint16 paramHashes; // Poseidon hashes of the weights (hashed params); 0 when the weights are fixed
}

/// @title InstanceLayouts
/// @notice Offsets into a proof's instances, from its {InstanceLayout}.
library InstanceLayouts {
    /// @notice How many public instances a proof has.
    function instanceCount(InstanceLayout memory instanceLayout) internal pure returns (uint256) {
        return paramHashesStart(instanceLayout) + instanceLayout.paramHashes
            + uint256(instanceLayout.slots) * (uint256(instanceLayout.inputsPerSlot) + instanceLayout.outputsPerSlot);
    }

    /// @notice Index of the first param hash (after the input hashes).
    function paramHashesStart(InstanceLayout memory instanceLayout) internal pure returns (uint256) {
        return instanceLayout.hashedInputs ? instanceLayout.slots : 0;
    }

    /// @notice Index of slot `slot`'s first public input.
    function inputsStart(InstanceLayout memory instanceLayout, uint256 slot) internal pure returns (uint256) {
        return paramHashesStart(instanceLayout) + instanceLayout.paramHashes + slot * instanceLayout.inputsPerSlot;
    }

    /// @notice Index of slot `slot`'s first public output.
    function outputsStart(InstanceLayout memory instanceLayout, uint256 slot) internal pure returns (uint256) {
        return inputsStart(instanceLayout, instanceLayout.slots) + slot * instanceLayout.outputsPerSlot;
    }
}

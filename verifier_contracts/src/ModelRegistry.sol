// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {Ownable2StepNoRenounce} from "./access/Ownable2StepNoRenounce.sol";

import {IHalo2Verifier} from "./interfaces/IHalo2Verifier.sol";
import {FixedPointFelt} from "./lib/FixedPointFelt.sol";
import {InstanceLayout, InstanceLayouts} from "./lib/InstanceLayout.sol";

/// @title ModelRegistry
/// @notice The model versions that proof-gated contracts trust. A version is one zkinfer circuit: its
///         verifier, the hashes that identify what was built (verifying key, zkinfer circuit id), how to read
///         its public instances, and, for circuits with hashed weights, the weight commitment proofs must
///         carry. Versions are append-only: a broken one is revoked, never edited; a fixed one is registered
///         anew under a new id. See {InstanceLayout} for how a proof's instances are read. Ownership cannot be
///         renounced (see {Ownable2StepNoRenounce}): revoking a version always stays possible.
contract ModelRegistry is Ownable2StepNoRenounce {
    /// @notice A registered model version.
    struct Model {
        IHalo2Verifier verifier;
        bool active; // false once revoked
        uint8 outputScale; // outputs are fixed point: value = signed(felt) / 2^outputScale
        InstanceLayout instanceLayout;
        bytes32 vkHash; // sha256 of the circuit's verifying key file (vk.key)
        bytes32 circuitId; // zkinfer's circuit id: sha256 over the circuit's content (manifest.json `circuit_id`)
        bytes32 weightCommitment; // keccak256 of the param-hash instances; zero when paramHashes == 0
    }

    /// @notice How many versions were ever registered; ids run from 1 to modelCount.
    uint256 public modelCount;

    mapping(uint256 modelId => Model) private _models;

    /// @notice A model version was registered.
    event ModelRegistered(
        uint256 indexed modelId,
        address indexed verifier,
        bytes32 indexed circuitId,
        bytes32 vkHash,
        uint8 outputScale,
        InstanceLayout instanceLayout,
        bytes32 weightCommitment
    );
    /// @notice A model version was revoked: gates refuse its proofs from now on.
    event ModelRevoked(uint256 indexed modelId);

    /// @notice No model version has this id.
    error UnknownModel(uint256 modelId);
    /// @notice The model version was revoked.
    error RevokedModel(uint256 modelId);
    /// @notice The verifier address holds no code.
    error VerifierNotContract(address verifier);
    /// @notice The verifying-key hash or the circuit id is zero.
    error MissingHash();
    /// @notice The layout cannot bind proofs to subjects: no slots, no outputs, or not exactly one of
    ///         hashed inputs and public inputs.
    error InvalidInstanceLayout();
    /// @notice The output scale is beyond what gates decode.
    error OutputScaleTooLarge(uint8 outputScale, uint8 maxScale);
    /// @notice A circuit with hashed weights needs the weight commitment its proofs must carry.
    error WeightCommitmentRequired();
    /// @notice A circuit with fixed weights has no weight commitment.
    error UnexpectedWeightCommitment();

    /// @param initialOwner The account that may register and revoke versions.
    constructor(address initialOwner) Ownable(initialOwner) {}

    /// @notice Registers a model version.
    /// @param verifier The circuit's verifier.
    /// @param vkHash sha256 of the circuit's verifying key file.
    /// @param circuitId zkinfer's circuit id (manifest.json `circuit_id`): sha256 over the circuit's content
    ///        (artifact hashes, settings, layout, SRS identity, ezkl version), the same wherever it is rebuilt.
    /// @param outputScale The fixed-point scale of the circuit's outputs.
    /// @param instanceLayout Where the proof's public instances sit.
    /// @param weightCommitment keccak256 of the param-hash instances (abi.encodePacked), or zero for fixed weights.
    /// @return modelId The new version's id.
    function register(
        IHalo2Verifier verifier,
        bytes32 vkHash,
        bytes32 circuitId,
        uint8 outputScale,
        InstanceLayout calldata instanceLayout,
        bytes32 weightCommitment
    ) external onlyOwner returns (uint256 modelId) {
        if (address(verifier).code.length == 0) revert VerifierNotContract(address(verifier));
        if (vkHash == bytes32(0) || circuitId == bytes32(0)) revert MissingHash();
        if (outputScale > FixedPointFelt.MAX_SCALE) revert OutputScaleTooLarge(outputScale, FixedPointFelt.MAX_SCALE);
        if (
            instanceLayout.slots == 0 || instanceLayout.outputsPerSlot == 0
                || (instanceLayout.hashedInputs == (instanceLayout.inputsPerSlot != 0))
        ) revert InvalidInstanceLayout();
        bool hashedWeights = instanceLayout.paramHashes != 0;
        if (hashedWeights && weightCommitment == bytes32(0)) revert WeightCommitmentRequired();
        if (!hashedWeights && weightCommitment != bytes32(0)) revert UnexpectedWeightCommitment();

        modelId = ++modelCount;
        _models[modelId] = Model({
            verifier: verifier,
            active: true,
            outputScale: outputScale,
            instanceLayout: instanceLayout,
            vkHash: vkHash,
            circuitId: circuitId,
            weightCommitment: weightCommitment
        });
        emit ModelRegistered(
            modelId, address(verifier), circuitId, vkHash, outputScale, instanceLayout, weightCommitment
        );
    }

    /// @notice Revokes a model version for good: every gate refuses its proofs from the next block on.
    /// @param modelId The version to revoke.
    function revoke(uint256 modelId) external onlyOwner {
        Model storage m = _existing(modelId);
        if (!m.active) revert RevokedModel(modelId);
        m.active = false;
        emit ModelRevoked(modelId);
    }

    /// @notice A model version, revoked or not.
    /// @param modelId The version's id.
    /// @return The version (reverts with UnknownModel for an id never registered).
    function model(uint256 modelId) external view returns (Model memory) {
        return _existing(modelId);
    }

    /// @notice A model version that may be used now.
    /// @param modelId The version's id.
    /// @return The version (reverts with UnknownModel or RevokedModel).
    function activeModel(uint256 modelId) external view returns (Model memory) {
        Model storage m = _existing(modelId);
        if (!m.active) revert RevokedModel(modelId);
        return m;
    }

    /// @notice How many public instances a proof with this layout has.
    /// @param instanceLayout The instance layout.
    /// @return The instance count.
    function instanceCount(InstanceLayout calldata instanceLayout) external pure returns (uint256) {
        return InstanceLayouts.instanceCount(instanceLayout);
    }

    function _existing(uint256 modelId) private view returns (Model storage m) {
        m = _models[modelId];
        if (address(m.verifier) == address(0)) revert UnknownModel(modelId);
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {FixedPointFelt} from "./lib/FixedPointFelt.sol";
import {InstanceLayout, InstanceLayouts} from "./lib/InstanceLayout.sol";
import {ModelRegistry} from "./ModelRegistry.sol";

/// @title InferenceGate
/// @notice Base of contracts that act on proven ML inferences. A valid proof alone says only "this model maps
///         these inputs to these outputs"; the gate decides whether that statement may move state here:
///         1. Model: the model version is registered, not revoked, and accepted by this gate.
///         2. Subject binding: an authorised feature publisher (an oracle) posts, per subject, a commitment
///            to the subject's current features. Each of the proof's K slots names a subject, and the slot's
///            inputs must match that subject's posted commitment: keccak256 of the slot's public input
///            instances (abi.encodePacked), or for hashed-input circuits the slot's Poseidon hash instance
///            itself. A proof about someone else's features, or about features edited after posting, fails.
///         3. Freshness: the posted features are at most `maxFeatureAge` seconds old.
///         4. Weights: for hashed-weight circuits, the param-hash instances match the registry's commitment.
///         5. Replay: each statement acts once. The statement key is
///            keccak256(abi.encode(modelId, observationIds, instances)): the model, which posted observation
///            each slot used, and every instance. It never involves the proof bytes (a fresh proof of the
///            same statement is just as valid), and re-posting identical features later yields a new
///            observation id, so an unchanged subject can be acted on again in a later round.
///         6. Proof: the registered verifier accepts the proof for exactly these instances.
///         Then the outputs are decoded from fixed point into integers with OUTPUT_DECIMALS decimals and
///         handed to the consumer's {_act}.
/// @dev Cheap checks run before the verifier (about 600k gas); a revert anywhere undoes everything,
///      including marking the statement consumed. A verifier that reverts for any reason (an invalid proof,
///      or running out of gas) yields ProofRejected. Pausing stops submissions only: publishers keep
///      posting, so features are fresh when the gate resumes.
abstract contract InferenceGate is Ownable2Step, Pausable {
    using FixedPointFelt for uint256;
    using InstanceLayouts for InstanceLayout;

    /// @notice A subject's most recent posted features.
    struct Observation {
        bytes32 commitment; // keccak256 of the slot's input instances, or the Poseidon hash instance
        uint64 postedAt; // block timestamp of the posting
        uint64 id; // unique per posting, increasing
    }

    /// @notice How this gate reads a model version's outputs.
    struct AcceptedModel {
        bool accepted;
        uint16 outputIndex; // which of a slot's outputs this gate acts on
    }

    /// @notice Decoded outputs carry this many decimals: 1.0 is 10**OUTPUT_DECIMALS.
    uint8 public constant OUTPUT_DECIMALS = 18;

    /// @notice The registry of model versions this gate trusts.
    ModelRegistry public immutable registry;
    /// @notice How old (seconds) posted features may be when a proof about them is acted on.
    uint64 public maxFeatureAge;
    /// @notice Observations posted so far; the latest observation's id.
    uint64 public observationCount;
    /// @notice Accounts allowed to post feature commitments.
    mapping(address publisher => bool) public isFeaturePublisher;
    /// @notice Statements already acted on.
    mapping(bytes32 statementKey => bool) public isConsumed;

    mapping(bytes32 subject => Observation) private _observations;
    mapping(uint256 modelId => AcceptedModel) private _acceptedModels;

    /// @notice A feature publisher was allowed or disallowed.
    event FeaturePublisherSet(address indexed publisher, bool allowed);
    /// @notice The maximum feature age changed.
    event MaxFeatureAgeSet(uint64 maxFeatureAge);
    /// @notice A model version is accepted, reading the given output of each slot.
    event ModelAccepted(uint256 indexed modelId, uint16 outputIndex);
    /// @notice A model version is no longer accepted.
    event ModelDropped(uint256 indexed modelId);
    /// @notice A subject's features were posted.
    event FeaturesPosted(bytes32 indexed subject, uint64 indexed observationId, bytes32 commitment, address publisher);
    /// @notice A proven statement was acted on.
    event StatementConsumed(bytes32 indexed statementKey, uint256 indexed modelId, address indexed submitter);

    /// @notice The registry address holds no code.
    error RegistryNotContract(address registry);
    /// @notice A zero address where an account is needed.
    error ZeroAddress();
    /// @notice Features could never be fresh with a zero maximum age.
    error ZeroMaxFeatureAge();
    /// @notice The caller may not post features.
    error NotFeaturePublisher(address account);
    /// @notice This gate does not accept the model version.
    error ModelNotAccepted(uint256 modelId);
    /// @notice The output index is not one of the model's per-slot outputs.
    error OutputIndexOutOfRange(uint256 modelId, uint16 outputIndex, uint16 outputsPerSlot);
    /// @notice The proof carries a different number of instances than the model's layout.
    error InstanceCountMismatch(uint256 modelId, uint256 expected, uint256 actual);
    /// @notice One subject per slot is needed.
    error SubjectCountMismatch(uint256 expected, uint256 actual);
    /// @notice The proof's param hashes are not the registered weight commitment: other weights.
    error WeightCommitmentMismatch(uint256 modelId, bytes32 registered, bytes32 proven);
    /// @notice Nothing was ever posted for the subject.
    error NoFeaturesPosted(bytes32 subject);
    /// @notice The proof's inputs are not the subject's posted features.
    error FeatureCommitmentMismatch(bytes32 subject, bytes32 posted, bytes32 proven);
    /// @notice The subject's posted features are older than `maxFeatureAge`.
    error StaleFeatures(bytes32 subject, uint64 postedAt, uint64 maxFeatureAge);
    /// @notice The statement was already acted on.
    error StatementAlreadyConsumed(bytes32 statementKey);
    /// @notice The model's verifier rejected the proof for these instances.
    error ProofRejected(uint256 modelId);

    modifier onlyFeaturePublisher() {
        if (!isFeaturePublisher[msg.sender]) revert NotFeaturePublisher(msg.sender);
        _;
    }

    /// @param registry_ The model registry.
    /// @param initialOwner The account that configures the gate.
    /// @param maxFeatureAge_ The initial maximum feature age, seconds.
    constructor(ModelRegistry registry_, address initialOwner, uint64 maxFeatureAge_) Ownable(initialOwner) {
        if (address(registry_).code.length == 0) revert RegistryNotContract(address(registry_));
        registry = registry_;
        _setMaxFeatureAge(maxFeatureAge_);
    }

    // ----------------------------------------------------------------------------------------- configuration

    /// @notice Allows or disallows an account to post feature commitments.
    /// @param publisher The account (an oracle).
    /// @param allowed Whether it may post.
    function setFeaturePublisher(address publisher, bool allowed) external onlyOwner {
        if (publisher == address(0)) revert ZeroAddress();
        isFeaturePublisher[publisher] = allowed;
        emit FeaturePublisherSet(publisher, allowed);
    }

    /// @notice Sets how old posted features may be when acted on.
    /// @param maxFeatureAge_ Seconds, at least 1.
    function setMaxFeatureAge(uint64 maxFeatureAge_) external onlyOwner {
        _setMaxFeatureAge(maxFeatureAge_);
    }

    /// @notice Accepts proofs of a model version, acting on one of each slot's outputs.
    /// @param modelId A registered, active model version.
    /// @param outputIndex Which of a slot's outputs to act on.
    function acceptModel(uint256 modelId, uint16 outputIndex) external onlyOwner {
        InstanceLayout memory instanceLayout = registry.activeModel(modelId).instanceLayout;
        if (outputIndex >= instanceLayout.outputsPerSlot) {
            revert OutputIndexOutOfRange(modelId, outputIndex, instanceLayout.outputsPerSlot);
        }
        _checkLayout(instanceLayout);
        _acceptedModels[modelId] = AcceptedModel({accepted: true, outputIndex: outputIndex});
        emit ModelAccepted(modelId, outputIndex);
    }

    /// @notice Stops accepting proofs of a model version.
    /// @param modelId The model version.
    function dropModel(uint256 modelId) external onlyOwner {
        if (!_acceptedModels[modelId].accepted) revert ModelNotAccepted(modelId);
        delete _acceptedModels[modelId];
        emit ModelDropped(modelId);
    }

    /// @notice Stops all submissions (the circuit breaker of last resort).
    function pause() external onlyOwner {
        _pause();
    }

    /// @notice Resumes submissions.
    function unpause() external onlyOwner {
        _unpause();
    }

    // ------------------------------------------------------------------------------------------------ oracle

    /// @notice Posts a subject's current features, replacing what was posted before.
    /// @param subject The subject (the consumer defines how subjects are named).
    /// @param commitment keccak256 of the subject's input instances (abi.encodePacked) for public-input
    ///        circuits, or the inputs' Poseidon hash for hashed-input circuits.
    /// @return observationId The posting's id.
    function postFeatures(bytes32 subject, bytes32 commitment)
        external
        onlyFeaturePublisher
        returns (uint64 observationId)
    {
        observationId = ++observationCount;
        _observations[subject] =
            Observation({commitment: commitment, postedAt: uint64(block.timestamp), id: observationId});
        emit FeaturesPosted(subject, observationId, commitment, msg.sender);
    }

    /// @notice A subject's latest posted features (all zero when none were posted).
    /// @param subject The subject.
    /// @return The observation.
    function observation(bytes32 subject) external view returns (Observation memory) {
        return _observations[subject];
    }

    /// @notice Whether and how this gate accepts a model version.
    /// @param modelId The model version.
    /// @return The acceptance record.
    function acceptedModel(uint256 modelId) external view returns (AcceptedModel memory) {
        return _acceptedModels[modelId];
    }

    // -------------------------------------------------------------------------------------------------- gate

    /// @notice Acts on a proven inference about K subjects, once.
    /// @param modelId The model version the proof is of.
    /// @param proof The proof bytes (ezkl's `hex_proof`).
    /// @param instances The proof's public instances.
    /// @param subjects One subject per slot, in slot order.
    /// @return statementKey The key the statement is now consumed under.
    function submit(uint256 modelId, bytes calldata proof, uint256[] calldata instances, bytes32[] calldata subjects)
        external
        whenNotPaused
        returns (bytes32 statementKey)
    {
        ModelRegistry.Model memory m = registry.activeModel(modelId);
        AcceptedModel memory accepted = _acceptedModels[modelId];
        if (!accepted.accepted) revert ModelNotAccepted(modelId);

        InstanceLayout memory instanceLayout = m.instanceLayout;
        uint256 expected = instanceLayout.instanceCount();
        if (instances.length != expected) revert InstanceCountMismatch(modelId, expected, instances.length);
        if (subjects.length != instanceLayout.slots) {
            revert SubjectCountMismatch(instanceLayout.slots, subjects.length);
        }
        _validateSubjects(subjects);
        _checkWeights(modelId, m, instances);

        uint64[] memory observationIds = _bindSubjects(instanceLayout, instances, subjects);
        statementKey = keccak256(abi.encode(modelId, observationIds, instances));
        if (isConsumed[statementKey]) revert StatementAlreadyConsumed(statementKey);
        isConsumed[statementKey] = true;

        try m.verifier.verifyProof(proof, instances) returns (bool valid) {
            if (!valid) revert ProofRejected(modelId);
        } catch {
            revert ProofRejected(modelId);
        }

        int256[] memory outputs = new int256[](instanceLayout.slots);
        for (uint256 slot; slot < instanceLayout.slots; ++slot) {
            uint256 felt = instances[instanceLayout.outputsStart(slot) + accepted.outputIndex];
            outputs[slot] = felt.toDecimals(m.outputScale, OUTPUT_DECIMALS);
        }
        emit StatementConsumed(statementKey, modelId, msg.sender);
        _act(modelId, subjects, outputs);
    }

    // ----------------------------------------------------------------------------------------- consumer hooks

    /// @notice Applies the proven outputs. Runs after every check passed; reverting undoes the submission.
    /// @param modelId The model version.
    /// @param subjects One subject per slot.
    /// @param outputs The acted-on output of each slot, with OUTPUT_DECIMALS decimals.
    function _act(uint256 modelId, bytes32[] calldata subjects, int256[] memory outputs) internal virtual;

    /// @notice Rejects subjects this consumer cannot act on (before the proof is checked).
    function _validateSubjects(bytes32[] calldata subjects) internal view virtual {}

    /// @notice Rejects layouts this consumer cannot act on (when a model is accepted).
    function _checkLayout(InstanceLayout memory instanceLayout) internal view virtual {}

    // ------------------------------------------------------------------------------------------------ checks

    function _checkWeights(uint256 modelId, ModelRegistry.Model memory m, uint256[] calldata instances) private pure {
        if (m.instanceLayout.paramHashes == 0) return;
        uint256 start = InstanceLayouts.paramHashesStart(m.instanceLayout);
        bytes32 proven = keccak256(abi.encodePacked(instances[start:start + m.instanceLayout.paramHashes]));
        if (proven != m.weightCommitment) revert WeightCommitmentMismatch(modelId, m.weightCommitment, proven);
    }

    function _bindSubjects(
        InstanceLayout memory instanceLayout,
        uint256[] calldata instances,
        bytes32[] calldata subjects
    ) private view returns (uint64[] memory observationIds) {
        observationIds = new uint64[](instanceLayout.slots);
        for (uint256 slot; slot < instanceLayout.slots; ++slot) {
            bytes32 proven;
            if (instanceLayout.hashedInputs) {
                proven = bytes32(instances[slot]);
            } else {
                uint256 start = instanceLayout.inputsStart(slot);
                proven = keccak256(abi.encodePacked(instances[start:start + instanceLayout.inputsPerSlot]));
            }
            bytes32 subject = subjects[slot];
            Observation memory posted = _observations[subject];
            if (posted.postedAt == 0) revert NoFeaturesPosted(subject);
            if (posted.commitment != proven) revert FeatureCommitmentMismatch(subject, posted.commitment, proven);
            if (block.timestamp - posted.postedAt > maxFeatureAge) {
                revert StaleFeatures(subject, posted.postedAt, maxFeatureAge);
            }
            observationIds[slot] = posted.id;
        }
    }

    function _setMaxFeatureAge(uint64 maxFeatureAge_) private {
        if (maxFeatureAge_ == 0) revert ZeroMaxFeatureAge();
        maxFeatureAge = maxFeatureAge_;
        emit MaxFeatureAgeSet(maxFeatureAge_);
    }
}

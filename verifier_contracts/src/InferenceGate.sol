// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

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
///            keccak256(abi.encode(modelId, postedAts, instances)): the model, when each slot's features
///            were posted, and every instance. It never involves the proof bytes (a fresh proof of the same
///            statement is just as valid), and re-posting identical features later is a new posting, so an
///            unchanged subject can be acted on again in a later round.
///         6. Proof: the registered verifier accepts the proof for exactly these instances.
///         Then each slot's output is decoded from fixed point into an integer with OUTPUT_DECIMALS decimals
///         and handed to the consumer's {_act}, with the consumer's state about the slot's subject.
/// @dev Gas: one proof may act on K = 64 subjects, so everything per subject is kept to one storage slot,
///      a {SubjectRecord}: the posting's commitment digest and time, and 32 bits of the consumer's own state
///      (a borrower's rate). Acting on a subject reads that slot once (cold) and writes it once (warm).
///      The digest is the commitment's low 192 bits: finding other features that match a posted digest
///      takes about 2^192 hash evaluations, and two feature vectors with equal digests about 2^96; the
///      publisher (not the subject) chooses what is posted. See verifier_contracts/README.md.
///      A revert anywhere undoes everything, including marking the statement consumed. A verifier that
///      reverts for any reason (an invalid proof, or running out of gas) yields ProofRejected. Pausing stops
///      submissions only: publishers keep posting, so features are fresh when the gate resumes.
abstract contract InferenceGate is Ownable2Step, Pausable {
    using FixedPointFelt for FixedPointFelt.Decoder;
    using InstanceLayouts for InstanceLayout;

    /// @notice What the gate keeps per subject: one storage slot.
    struct SubjectRecord {
        bytes24 commitmentDigest; // {commitmentDigest} of the latest posted commitment
        uint32 postedAt; // block timestamp of the latest posting (0: never posted); uint32 lasts until 2106
        uint32 state; // the consumer's state about the subject (see {_act}); postings leave it untouched
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
    /// @notice Accounts allowed to post feature commitments.
    mapping(address publisher => bool) public isFeaturePublisher;
    /// @notice Statements already acted on.
    mapping(bytes32 statementKey => bool) public isConsumed;

    mapping(bytes32 subject => SubjectRecord) private _records;

    // SubjectRecord's layout in its storage word (Solidity packs the first field into the lowest bytes):
    // commitmentDigest in bits 0-191, postedAt in 192-223, state in 224-255.
    uint256 private constant POSTED_AT_SHIFT = 192;
    uint256 private constant STATE_SHIFT = 224;
    uint256 private constant STATE_MASK = uint256(type(uint32).max) << STATE_SHIFT;
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
    event FeaturesPosted(bytes32 indexed subject, bytes32 commitment, uint32 postedAt, address indexed publisher);
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
    /// @notice The proof's inputs are not the subject's posted features (digests: see {commitmentDigest}).
    error FeatureCommitmentMismatch(bytes32 subject, bytes24 posted, bytes24 proven);
    /// @notice The subject's posted features are older than `maxFeatureAge`.
    error StaleFeatures(bytes32 subject, uint32 postedAt, uint64 maxFeatureAge);
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
    function postFeatures(bytes32 subject, bytes32 commitment) external onlyFeaturePublisher {
        SubjectRecord storage record = _records[subject];
        uint32 postedAt = SafeCast.toUint32(block.timestamp);
        record.commitmentDigest = commitmentDigest(commitment);
        record.postedAt = postedAt;
        emit FeaturesPosted(subject, commitment, postedAt, msg.sender);
    }

    /// @notice What the gate keeps about a subject (all zero when nothing was posted).
    /// @param subject The subject.
    /// @return The record.
    function subjectRecord(bytes32 subject) external view returns (SubjectRecord memory) {
        return _records[subject];
    }

    /// @notice The part of a feature commitment the gate stores and compares: its low 192 bits.
    /// @param commitment A feature commitment (see {postFeatures}).
    /// @return The digest.
    function commitmentDigest(bytes32 commitment) public pure returns (bytes24) {
        return bytes24(uint192(uint256(commitment)));
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

        uint256[] memory postedAts = _bindSubjects(instanceLayout, instances, subjects);
        statementKey = keccak256(abi.encode(modelId, postedAts, instances));
        if (isConsumed[statementKey]) revert StatementAlreadyConsumed(statementKey);
        isConsumed[statementKey] = true;

        try m.verifier.verifyProof(proof, instances) returns (bool valid) {
            if (!valid) revert ProofRejected(modelId);
        } catch {
            revert ProofRejected(modelId);
        }
        emit StatementConsumed(statementKey, modelId, msg.sender);
        _actOnSlots(
            modelId,
            FixedPointFelt.decoder(m.outputScale, OUTPUT_DECIMALS),
            instanceLayout.outputsStart(0) + accepted.outputIndex,
            instanceLayout.outputsPerSlot,
            instances,
            subjects
        );
    }

    // ----------------------------------------------------------------------------------------- consumer hooks

    /// @notice Applies one slot's proven output, slot by slot. Runs after every check passed and the proof
    ///         was verified; reverting undoes the whole submission.
    /// @param modelId The model version.
    /// @param subject The slot's subject.
    /// @param output The slot's acted-on output, with OUTPUT_DECIMALS decimals.
    /// @param state The consumer's state about the subject (0 until the consumer first returns another).
    /// @return The subject's new state, stored in the subject's record (one warm write when it changed).
    function _act(uint256 modelId, bytes32 subject, int256 output, uint32 state) internal virtual returns (uint32);

    /// @notice The consumer's state about a subject (see {_act}).
    function _subjectState(bytes32 subject) internal view returns (uint32) {
        return _records[subject].state;
    }

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

    /// @dev Checks each slot's inputs against its subject's posting; returns when each was posted (part of the
    ///      statement key). Runs once per slot of up to 64-slot proofs: loop invariants are read once.
    function _bindSubjects(
        InstanceLayout memory instanceLayout,
        uint256[] calldata instances,
        bytes32[] calldata subjects
    ) private view returns (uint256[] memory postedAts) {
        uint256 slots = subjects.length;
        uint256 maxAge = maxFeatureAge;
        postedAts = new uint256[](slots);
        for (uint256 slot; slot < slots; ++slot) {
            bytes32 subject = subjects[slot];
            uint256 record = _loadRecord(subject);
            uint32 postedAt = uint32(record >> POSTED_AT_SHIFT);
            if (postedAt == 0) revert NoFeaturesPosted(subject);
            bytes24 digest = commitmentDigest(_slotCommitment(instanceLayout, instances, slot));
            if (bytes24(uint192(record)) != digest) {
                revert FeatureCommitmentMismatch(subject, bytes24(uint192(record)), digest);
            }
            // postedAt <= block.timestamp: it was a block's timestamp.
            unchecked {
                if (block.timestamp - postedAt > maxAge) revert StaleFeatures(subject, postedAt, uint64(maxAge));
            }
            postedAts[slot] = postedAt;
        }
    }

    /// @dev The subject's record as one word (the hot loops read it whole: one SLOAD, no memory struct).
    function _loadRecord(bytes32 subject) private view returns (uint256 word) {
        SubjectRecord storage record = _records[subject];
        assembly ("memory-safe") {
            word := sload(record.slot)
        }
    }

    /// @dev A slot's proven feature commitment: its Poseidon hash instance, or keccak256 of its inputs.
    function _slotCommitment(InstanceLayout memory instanceLayout, uint256[] calldata instances, uint256 slot)
        private
        pure
        returns (bytes32)
    {
        if (instanceLayout.hashedInputs) return bytes32(instances[slot]);
        uint256 start = instanceLayout.inputsStart(slot);
        return keccak256(abi.encodePacked(instances[start:start + instanceLayout.inputsPerSlot]));
    }

    /// @dev Hands each slot's decoded output (instances[index], then every `stride`-th) to the consumer and
    ///      stores the subject's new state.
    function _actOnSlots(
        uint256 modelId,
        FixedPointFelt.Decoder memory decoder,
        uint256 index,
        uint256 stride,
        uint256[] calldata instances,
        bytes32[] calldata subjects
    ) private {
        uint256 slots = subjects.length;
        for (uint256 slot; slot < slots; ++slot) {
            _actOnSlot(modelId, subjects[slot], decoder.decode(instances[index]));
            index += stride;
        }
    }

    /// @dev One slot: the consumer acts, the subject's record keeps its new state. The record is read afresh
    ///      (a warm read): a subject may fill two slots, and the second sees the first's effect.
    function _actOnSlot(uint256 modelId, bytes32 subject, int256 output) private {
        SubjectRecord storage record = _records[subject];
        uint256 word;
        // Inline rather than _loadRecord: the slot is needed again for the write, and a shared helper taking
        // the storage pointer measured 24 gas more per subject at K = 64.
        assembly ("memory-safe") {
            word := sload(record.slot)
        }
        uint32 state = uint32(word >> STATE_SHIFT);
        uint32 next = _act(modelId, subject, output, state);
        if (next != state) {
            word = (word & ~STATE_MASK) | (uint256(next) << STATE_SHIFT);
            assembly ("memory-safe") {
                sstore(record.slot, word)
            }
        }
    }

    function _setMaxFeatureAge(uint64 maxFeatureAge_) private {
        if (maxFeatureAge_ == 0) revert ZeroMaxFeatureAge();
        maxFeatureAge = maxFeatureAge_;
        emit MaxFeatureAgeSet(maxFeatureAge_);
    }
}

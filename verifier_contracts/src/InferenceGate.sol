// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {Ownable2StepNoRenounce} from "./access/Ownable2StepNoRenounce.sol";
import {IHalo2Verifier} from "./interfaces/IHalo2Verifier.sol";
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
///         3. Publisher: the posting's publisher is still authorised. Each authorisation gets a new publisher
///            id, which the posting records; disallowing the account retires the id, and every posting made
///            under it is void for good (allowing the account again gives it a new id).
///         4. Freshness: the posting is at most `maxFeatureAge` seconds old, and was never stale before
///            (raising the limit does not revive stale postings: see {setMaxFeatureAge}).
///         5. Weights: for hashed-weight circuits, the param-hash instances match the registry's commitment.
///         6. One action per posting: each posting (one {postFeatures} call) is acted on at most once, by
///            whichever accepted model comes first; the publisher posts again (even the same features) for
///            a new round, or withdraws a posting ({withdrawFeatures}) before it is acted on. Postings are per
///            subject, so subjects with identical features ("twins") are independent. It never involves the
///            proof bytes: a fresh proof of a consumed posting is refused like the old one.
///         7. Proof: the registered verifier, called with STATICCALL, returns exactly `true` for exactly these
///            instances.
///         Then each slot's output is decoded from fixed point into an integer with OUTPUT_DECIMALS decimals
///         and handed to the consumer's {_act}, with the consumer's state about the slot's subject.
///         Model breaker: a guardian (an account apart from the owner, e.g. a drift monitor's key; see
///         {setGuardian}) or the owner suspends one accepted model version at once ({suspendModel}); only the
///         owner resumes it ({resumeModel}). Other models, postings and the pause flag are untouched.
///         Rounds: after a subject's posting was acted on, the next posting for that subject waits
///         `minPostingInterval` seconds ({setMinPostingInterval}), so a compromised publisher opens at most
///         one action per subject per interval (see {postFeatures} for the exact bound).
/// @dev Gas: one proof may act on K = 64 subjects, so everything per subject is kept to one storage slot,
///      a {SubjectRecord}: the posting's commitment digest, time and publisher id, and 16 bits of the
///      consumer's own state (a borrower's rate). Acting on a subject reads that slot once (cold) and writes it
///      once (warm): the write that records the consumer's new state also marks the posting consumed, so
///      one-action-per-posting costs no storage of its own.
///      The digest is the commitment's low 192 bits: finding other features that match a posted digest
///      takes about 2^192 hash evaluations, and two feature vectors with equal digests about 2^96; the
///      publisher (not the subject) chooses what is posted. See verifier_contracts/README.md.
///      A revert anywhere undoes everything, including marking postings consumed. A verifier that reverts,
///      runs out of gas or returns anything but one word equal to 1 yields ProofRejected. Pausing stops
///      submissions only: publishers keep posting, so features are fresh when the gate resumes. Ownership
///      cannot be renounced (see {Ownable2StepNoRenounce}): a paused gate can always be resumed.
abstract contract InferenceGate is Ownable2StepNoRenounce, Pausable {
    using FixedPointFelt for FixedPointFelt.Decoder;
    using InstanceLayouts for InstanceLayout;

    /// @notice What the gate keeps per subject: one storage slot.
    struct SubjectRecord {
        bytes24 commitmentDigest; // {commitmentDigest} of the latest posting (zero once withdrawn)
        uint32 postedAt; // block timestamp of the latest posting; 0: none (never posted, or withdrawn)
        uint16 publisherId; // the publisher id the posting was made under; CONSUMED once acted on
        uint16 state; // the consumer's state about the subject (see {_act}); postings leave it untouched
    }

    /// @notice How this gate reads a model version's outputs, and whether it may act now. One storage slot,
    ///         read once by {submit}: the suspension costs the hot path no storage read of its own.
    struct AcceptedModel {
        bool accepted; // set by {acceptModel}, cleared by {dropModel}
        uint16 outputIndex; // which of a slot's outputs this gate acts on
        bool suspended; // set by {suspendModel}, cleared only by {resumeModel} (kept across drop and accept)
    }

    /// @notice Decoded outputs carry this many decimals: 1.0 is 10**OUTPUT_DECIMALS.
    uint8 public constant OUTPUT_DECIMALS = 18;

    /// @notice The registry of model versions this gate trusts.
    ModelRegistry public immutable registry;
    // The submission-time configuration shares one storage slot (with Pausable's flag): one cold read.
    /// @notice How old (seconds) posted features may be when a proof about them is acted on.
    uint32 public maxFeatureAge;
    /// @notice Postings made before this time are stale for good, whatever the limit (see {setMaxFeatureAge}).
    uint32 public staleBefore;
    /// @notice How many publisher ids were handed out; ids run from 1 (see {setFeaturePublisher}).
    uint16 public publisherIdCount;
    /// @notice The current publisher id of an account allowed to post (0: not allowed).
    mapping(address publisher => uint16 publisherId) public publisherIdOf;
    /// @notice Whether postings made under a publisher id may be acted on (false once the id is retired).
    mapping(uint16 publisherId => bool) public isActivePublisherId;

    mapping(bytes32 subject => SubjectRecord) private _records;
    mapping(uint256 modelId => AcceptedModel) private _acceptedModels;

    // The breaker's settings share one storage slot, read only off the submission path ({suspendModel},
    // and {postFeatures} for a subject whose posting was acted on).
    /// @notice The account that may suspend model versions besides the owner (zero: none, the owner alone).
    address public guardian;
    /// @notice Seconds a subject's next posting waits once its posting was acted on (0: no wait).
    uint32 public minPostingInterval;

    // SubjectRecord's layout in its storage word (Solidity packs the first field into the lowest bytes):
    // commitmentDigest in bits 0-191, postedAt in 192-223, publisherId in 224-239, state in 240-255.
    uint256 private constant POSTED_AT_SHIFT = 192;
    uint256 private constant PUBLISHER_SHIFT = 224;
    uint256 private constant STATE_SHIFT = 240;
    uint256 private constant PUBLISHER_MASK = uint256(type(uint16).max) << PUBLISHER_SHIFT;
    uint256 private constant STATE_MASK = uint256(type(uint16).max) << STATE_SHIFT;
    // AcceptedModel's layout in its word: accepted in bits 0-7, outputIndex in 8-23, suspended in 24-31. A
    // model acts when its word, masked to the two flags, is exactly "accepted, not suspended".
    uint256 private constant OUTPUT_INDEX_SHIFT = 8;
    uint256 private constant SUSPENDED_SHIFT = 24;
    uint256 private constant FLAG_MASK = 0xff;
    uint256 private constant ACCEPTED_FLAG = 1;
    uint256 private constant ACTING_MASK = FLAG_MASK | (FLAG_MASK << SUSPENDED_SHIFT);
    // A posting's publisherId once it was acted on (ids start at 1). Consuming a posting then rewrites the
    // word the consumer's new state is written to anyway.
    uint16 private constant CONSUMED = 0;
    // What a verifier returns for a valid proof: the ABI encoding of `true`, one word.
    uint256 private constant ABI_TRUE = 1;
    uint256 private constant WORD = 0x20;

    /// @notice An account was allowed (under a new or its current publisher id) or disallowed (its id retired).
    event FeaturePublisherSet(address indexed publisher, bool allowed, uint16 publisherId);
    /// @notice The maximum feature age changed; postings made before `staleBefore` stay stale.
    event MaxFeatureAgeSet(uint32 maxFeatureAge, uint32 staleBefore);
    /// @notice A model version is accepted, reading the given output of each slot.
    event ModelAccepted(uint256 indexed modelId, uint16 outputIndex);
    /// @notice A model version is no longer accepted.
    event ModelDropped(uint256 indexed modelId);
    /// @notice The guardian changed (zero: none).
    event GuardianSet(address indexed previousGuardian, address indexed newGuardian);
    /// @notice A model version was suspended by `by` (the guardian or the owner): no proof of it acts until
    ///         the owner resumes it. (Named apart from the ModelSuspended error, which {submit} reverts with.)
    event ModelSuspendedBy(uint256 indexed modelId, address indexed by);
    /// @notice The owner lifted a model version's suspension.
    event ModelResumed(uint256 indexed modelId);
    /// @notice The wait between a subject's acted-on posting and its next posting changed.
    event MinPostingIntervalSet(uint32 minPostingInterval);
    /// @notice A subject's features were posted.
    event FeaturesPosted(bytes32 indexed subject, bytes32 commitment, uint32 postedAt, address indexed publisher);
    /// @notice A subject's posting was withdrawn before it was acted on.
    event FeaturesWithdrawn(bytes32 indexed subject, uint32 postedAt, address indexed publisher);
    /// @notice A proven statement was acted on, consuming its subjects' postings. The key names the statement
    ///         (see {submit}); replays are refused per posting, not by key.
    event StatementConsumed(bytes32 indexed statementKey, uint256 indexed modelId, address indexed submitter);

    /// @notice The registry address holds no code.
    error RegistryNotContract(address registry);
    /// @notice A zero address where an account is needed.
    error ZeroAddress();
    /// @notice Features could never be fresh with a zero maximum age.
    error ZeroMaxFeatureAge();
    /// @notice The caller may not post features.
    error NotFeaturePublisher(address account);
    /// @notice Every publisher id was handed out.
    error PublisherIdsExhausted();
    /// @notice This gate does not accept the model version.
    error ModelNotAccepted(uint256 modelId);
    /// @notice The model version is suspended (see {suspendModel}): nothing of it acts until it is resumed.
    error ModelSuspended(uint256 modelId);
    /// @notice Suspending a model version that is already suspended.
    error ModelAlreadySuspended(uint256 modelId);
    /// @notice Resuming a model version that is not suspended.
    error ModelNotSuspended(uint256 modelId);
    /// @notice The caller is neither the guardian nor the owner.
    error NotGuardian(address account);
    /// @notice The subject's posting was acted on less than `minPostingInterval` ago: the next round opens at
    ///         `nextAllowedAt`.
    error PostingTooSoon(bytes32 subject, uint32 postedAt, uint256 nextAllowedAt);
    /// @notice The output index is not one of the model's per-slot outputs.
    error OutputIndexOutOfRange(uint256 modelId, uint16 outputIndex, uint16 outputsPerSlot);
    /// @notice The proof carries a different number of instances than the model's layout.
    error InstanceCountMismatch(uint256 modelId, uint256 expected, uint256 actual);
    /// @notice One subject per slot is needed.
    error SubjectCountMismatch(uint256 expected, uint256 actual);
    /// @notice The proof's param hashes are not the registered weight commitment: other weights.
    error WeightCommitmentMismatch(uint256 modelId, bytes32 registered, bytes32 proven);
    /// @notice The subject has no posting: nothing was ever posted, or the posting was withdrawn.
    error NoFeaturesPosted(bytes32 subject);
    /// @notice Nothing to withdraw: the subject has no posting that could still be acted on.
    error NoOpenPosting(bytes32 subject);
    /// @notice The subject's posting was already acted on (by this or another accepted model).
    error PostingAlreadyConsumed(bytes32 subject, uint32 postedAt);
    /// @notice The posting's publisher was disallowed after posting it: its postings are void.
    error PublisherRevoked(bytes32 subject, uint16 publisherId);
    /// @notice The proof's inputs are not the subject's posted features (digests: see {commitmentDigest}).
    error FeatureCommitmentMismatch(bytes32 subject, bytes24 posted, bytes24 proven);
    /// @notice The subject's posting is older than `maxFeatureAge`, or was (see {setMaxFeatureAge}).
    error StaleFeatures(bytes32 subject, uint32 postedAt, uint32 maxFeatureAge);
    /// @notice The model's verifier did not accept the proof for these instances.
    error ProofRejected(uint256 modelId);

    modifier onlyFeaturePublisher() {
        _publisherId(msg.sender);
        _;
    }

    modifier onlyGuardianOrOwner() {
        if (msg.sender != guardian && msg.sender != owner()) revert NotGuardian(msg.sender);
        _;
    }

    /// @param registry_ The model registry.
    /// @param initialOwner The account that configures the gate.
    /// @param maxFeatureAge_ The initial maximum feature age, seconds.
    constructor(ModelRegistry registry_, address initialOwner, uint32 maxFeatureAge_) Ownable(initialOwner) {
        if (address(registry_).code.length == 0) revert RegistryNotContract(address(registry_));
        registry = registry_;
        _setMaxFeatureAge(maxFeatureAge_);
    }

    // ----------------------------------------------------------------------------------------- configuration

    /// @notice Allows or disallows an account to post feature commitments. Allowing an account that is not
    ///         allowed gives it a new publisher id; disallowing one retires its id, which voids every posting
    ///         made under it, now and if the account is allowed again (under a new id). Allowing an allowed
    ///         account keeps its id.
    /// @param publisher The account (an oracle).
    /// @param allowed Whether it may post.
    function setFeaturePublisher(address publisher, bool allowed) external onlyOwner {
        if (publisher == address(0)) revert ZeroAddress();
        uint16 publisherId = publisherIdOf[publisher];
        if (allowed && publisherId == 0) {
            if (publisherIdCount == type(uint16).max) revert PublisherIdsExhausted();
            publisherId = ++publisherIdCount;
            publisherIdOf[publisher] = publisherId;
            isActivePublisherId[publisherId] = true;
        } else if (!allowed && publisherId != 0) {
            delete publisherIdOf[publisher];
            delete isActivePublisherId[publisherId];
        }
        emit FeaturePublisherSet(publisher, allowed, publisherId);
    }

    /// @notice Sets how old posted features may be when acted on. Lowering the limit applies to every posting
    ///         at once. Raising it extends postings that are fresh now, never revives stale ones: postings
    ///         older than the previous limit stay stale for good (`staleBefore` moves up to them).
    /// @param maxFeatureAge_ Seconds, at least 1.
    function setMaxFeatureAge(uint32 maxFeatureAge_) external onlyOwner {
        _setMaxFeatureAge(maxFeatureAge_);
    }

    /// @notice Accepts proofs of a model version, acting on one of each slot's outputs. A suspended version
    ///         stays suspended (accepting it again, e.g. for another output, never lifts a suspension: only
    ///         {resumeModel} does).
    /// @param modelId A registered, active model version.
    /// @param outputIndex Which of a slot's outputs to act on.
    function acceptModel(uint256 modelId, uint16 outputIndex) external onlyOwner {
        InstanceLayout memory instanceLayout = registry.activeModel(modelId).instanceLayout;
        if (outputIndex >= instanceLayout.outputsPerSlot) {
            revert OutputIndexOutOfRange(modelId, outputIndex, instanceLayout.outputsPerSlot);
        }
        _checkLayout(instanceLayout);
        AcceptedModel storage m = _acceptedModels[modelId];
        m.accepted = true;
        m.outputIndex = outputIndex;
        emit ModelAccepted(modelId, outputIndex);
    }

    /// @notice Stops accepting proofs of a model version. A suspension is kept: dropping and accepting the
    ///         version again does not resume it.
    /// @param modelId The model version.
    function dropModel(uint256 modelId) external onlyOwner {
        AcceptedModel storage m = _acceptedModels[modelId];
        if (!m.accepted) revert ModelNotAccepted(modelId);
        m.accepted = false;
        m.outputIndex = 0;
        emit ModelDropped(modelId);
    }

    /// @notice Sets the guardian: the account that may suspend model versions besides the owner (see
    ///         {suspendModel}); it can do nothing else. The zero address means no guardian (the owner alone
    ///         suspends). Suspensions already made stay.
    /// @param newGuardian The guardian (e.g. a drift monitor's key), or the zero address.
    function setGuardian(address newGuardian) external onlyOwner {
        address previous = guardian;
        guardian = newGuardian;
        emit GuardianSet(previous, newGuardian);
    }

    /// @notice Suspends a model version at once: from the next transaction on, {submit} refuses its proofs
    ///         with ModelSuspended, until the owner resumes it ({resumeModel}). Postings are untouched, so a
    ///         posting no model acted on can still be acted on after resuming, while it is fresh. Any model id
    ///         may be suspended, accepted or not (a suspended version accepted later stays suspended).
    /// @dev Callable by the guardian and the owner; the guardian's only power, which can stop actions but
    ///      never make one happen.
    /// @param modelId The model version.
    function suspendModel(uint256 modelId) external onlyGuardianOrOwner {
        AcceptedModel storage m = _acceptedModels[modelId];
        if (m.suspended) revert ModelAlreadySuspended(modelId);
        m.suspended = true;
        emit ModelSuspendedBy(modelId, msg.sender);
    }

    /// @notice Lifts a model version's suspension (owner only: the guardian stops, the owner decides to go on).
    /// @param modelId A suspended model version.
    function resumeModel(uint256 modelId) external onlyOwner {
        AcceptedModel storage m = _acceptedModels[modelId];
        if (!m.suspended) revert ModelNotSuspended(modelId);
        m.suspended = false;
        emit ModelResumed(modelId);
    }

    /// @notice Sets how long a subject's next posting waits after its posting was acted on. A proof acts on
    ///         a subject only through a posting, once, so the actions on a subject consume postings made at
    ///         least `minPostingInterval_` seconds apart (see {postFeatures}). Applies at once, to every subject.
    /// @param minPostingInterval_ Seconds (0: no wait).
    function setMinPostingInterval(uint32 minPostingInterval_) external onlyOwner {
        minPostingInterval = minPostingInterval_;
        emit MinPostingIntervalSet(minPostingInterval_);
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

    /// @notice Posts a subject's current features, replacing what was posted before: a new posting, which a
    ///         proof may act on once. Replacing a posting no proof acted on (a correction) is always allowed;
    ///         once a proof acted on the subject's posting, the next one waits until `minPostingInterval`
    ///         seconds after that posting (PostingTooSoon).
    /// @dev The bound, against a compromised publisher (any number of publisher accounts; not the owner, who
    ///      sets the interval): every action on a subject consumes a distinct posting, and a posting made after
    ///      an acted-on one is at least `minPostingInterval` (I) younger than it, so any two postings acted on
    ///      for one subject were posted at least I apart. Actions within any time window of length T consume
    ///      postings made within T + maxFeatureAge, so at most floor((T + maxFeatureAge) / I) + 1 of them act
    ///      on a subject; with the lending breaker's step, a borrower's rate moves at most maxRateStepBps per I
    ///      in the long run. Withdrawing (only a posting not acted on) or replacing an open posting changes
    ///      nothing of this: neither makes an action. Lowering I, or the owner acting, is not bounded.
    /// @param subject The subject (the consumer defines how subjects are named).
    /// @param commitment keccak256 of the subject's input instances (abi.encodePacked) for public-input
    ///        circuits, or the inputs' Poseidon hash for hashed-input circuits.
    function postFeatures(bytes32 subject, bytes32 commitment) external {
        uint16 publisherId = _publisherId(msg.sender);
        SubjectRecord storage record = _records[subject];
        uint32 previous = record.postedAt;
        // Acted on (consumed) when a posting exists and its id is CONSUMED: the next round waits.
        if (previous != 0 && record.publisherId == CONSUMED) {
            uint256 nextAllowedAt = uint256(previous) + minPostingInterval;
            if (block.timestamp < nextAllowedAt) revert PostingTooSoon(subject, previous, nextAllowedAt);
        }
        uint32 postedAt = SafeCast.toUint32(block.timestamp);
        record.commitmentDigest = commitmentDigest(commitment);
        record.postedAt = postedAt;
        record.publisherId = publisherId;
        emit FeaturesPosted(subject, commitment, postedAt, msg.sender);
    }

    /// @notice Withdraws a subject's posting that was not acted on yet (e.g. features found wrong): no proof
    ///         acts on it from now on. Any allowed publisher may, as any may replace the posting.
    /// @param subject The subject.
    function withdrawFeatures(bytes32 subject) external onlyFeaturePublisher {
        SubjectRecord storage record = _records[subject];
        uint32 postedAt = record.postedAt;
        if (postedAt == 0 || record.publisherId == CONSUMED) revert NoOpenPosting(subject);
        record.commitmentDigest = bytes24(0);
        record.postedAt = 0;
        record.publisherId = CONSUMED;
        emit FeaturesWithdrawn(subject, postedAt, msg.sender);
    }

    /// @notice Whether an account may post features.
    /// @param account The account.
    /// @return True while it is allowed.
    function isFeaturePublisher(address account) external view returns (bool) {
        return publisherIdOf[account] != 0;
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

    /// @notice Whether a model version is suspended (see {suspendModel}).
    /// @param modelId The model version.
    /// @return True while {submit} refuses its proofs with ModelSuspended.
    function isModelSuspended(uint256 modelId) external view returns (bool) {
        return _acceptedModels[modelId].suspended;
    }

    // -------------------------------------------------------------------------------------------------- gate

    /// @notice Acts on a proven inference about K subjects, consuming each subject's posting.
    /// @param modelId The model version the proof is of.
    /// @param proof The proof bytes (ezkl's `hex_proof`).
    /// @param instances The proof's public instances.
    /// @param subjects One subject per slot, in slot order.
    /// @return statementKey keccak256(abi.encode(modelId, subjects, postedAts, instances)): the statement
    ///         acted on (the model, each slot's subject and posting, every instance), for indexers.
    function submit(uint256 modelId, bytes calldata proof, uint256[] calldata instances, bytes32[] calldata subjects)
        external
        whenNotPaused
        returns (bytes32 statementKey)
    {
        ModelRegistry.Model memory m = registry.activeModel(modelId);
        // One read of the model's word for both flags and the output index (no memory struct): suspension
        // costs the hot path nothing over the acceptance check it shares.
        uint256 accepted = _loadAcceptedModel(modelId);
        if (accepted & ACTING_MASK != ACCEPTED_FLAG) _refuseModel(modelId, accepted);

        InstanceLayout memory instanceLayout = m.instanceLayout;
        uint256 expected = instanceLayout.instanceCount();
        if (instances.length != expected) revert InstanceCountMismatch(modelId, expected, instances.length);
        if (subjects.length != instanceLayout.slots) {
            revert SubjectCountMismatch(instanceLayout.slots, subjects.length);
        }
        _validateSubjects(subjects);
        _checkWeights(modelId, m, instances);

        uint256[] memory postedAts = _bindSubjects(instanceLayout, instances, subjects);
        _verify(modelId, m.verifier, proof, instances);
        statementKey = keccak256(abi.encode(modelId, subjects, postedAts, instances));
        emit StatementConsumed(statementKey, modelId, msg.sender);
        _actOnSlots(
            modelId,
            FixedPointFelt.decoder(m.outputScale, OUTPUT_DECIMALS),
            instanceLayout.outputsStart(0) + uint16(accepted >> OUTPUT_INDEX_SHIFT),
            instanceLayout.outputsPerSlot,
            instances,
            subjects,
            _actContext()
        );
    }

    // ----------------------------------------------------------------------------------------- consumer hooks

    /// @notice Applies one slot's proven output, slot by slot. Runs after every check passed and the proof
    ///         was verified, once per posting: a subject filling several slots (a padded batch) is acted on
    ///         in its first slot only. Reverting undoes the whole submission.
    /// @param modelId The model version.
    /// @param subject The slot's subject.
    /// @param output The slot's acted-on output, with OUTPUT_DECIMALS decimals.
    /// @param state The consumer's state about the subject (0 until the consumer first returns another).
    /// @param context What {_actContext} returned for this submission.
    /// @return The subject's new state, stored in the subject's record (one warm write).
    function _act(uint256 modelId, bytes32 subject, int256 output, uint16 state, uint256 context)
        internal
        virtual
        returns (uint16);

    /// @notice The consumer's settings for one submission (e.g. a limit kept in storage), read once and handed
    ///         to each slot's {_act}: K slots need not read storage K times (a warm read is 100 gas a slot).
    function _actContext() internal view virtual returns (uint256) {}

    /// @notice The consumer's state about a subject (see {_act}).
    function _subjectState(bytes32 subject) internal view returns (uint16) {
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

    /// @dev Checks each slot's posting (see {_checkPosting}) and that it matches the slot's inputs. Returns when
    ///      each was posted (part of the statement key). Nothing is written here, so a subject filling several
    ///      slots passes in each. Runs once per slot of up to 64-slot proofs: loop invariants are read once,
    ///      and a publisher id once per run of slots posted under it.
    function _bindSubjects(
        InstanceLayout memory instanceLayout,
        uint256[] calldata instances,
        bytes32[] calldata subjects
    ) private view returns (uint256[] memory postedAts) {
        uint256 slots = subjects.length;
        uint256 maxAge = maxFeatureAge;
        uint256 cutoff = staleBefore;
        uint256 activePublisherId; // the last publisher id found active (0: none yet; ids start at 1)
        postedAts = new uint256[](slots);
        for (uint256 slot; slot < slots; ++slot) {
            bytes32 subject = subjects[slot];
            uint256 record = _loadRecord(subject);
            activePublisherId = _checkPosting(subject, record, activePublisherId, maxAge, cutoff);
            bytes24 digest = commitmentDigest(_slotCommitment(instanceLayout, instances, slot));
            if (bytes24(uint192(record)) != digest) {
                revert FeatureCommitmentMismatch(subject, bytes24(uint192(record)), digest);
            }
            postedAts[slot] = uint32(record >> POSTED_AT_SHIFT);
        }
    }

    /// @dev A subject's posting (its record's word) may be acted on: it exists, was not acted on, its publisher
    ///      id is active (looked up unless it is `activePublisherId`, found active for an earlier slot), and it
    ///      is fresh. Returns the posting's publisher id.
    function _checkPosting(bytes32 subject, uint256 record, uint256 activePublisherId, uint256 maxAge, uint256 cutoff)
        private
        view
        returns (uint256)
    {
        uint32 postedAt = uint32(record >> POSTED_AT_SHIFT);
        if (postedAt == 0) revert NoFeaturesPosted(subject);
        uint16 publisherId = uint16(record >> PUBLISHER_SHIFT);
        if (publisherId == CONSUMED) revert PostingAlreadyConsumed(subject, postedAt);
        if (publisherId != activePublisherId && !isActivePublisherId[publisherId]) {
            revert PublisherRevoked(subject, publisherId);
        }
        // postedAt <= block.timestamp: it was a block's timestamp.
        unchecked {
            if (postedAt < cutoff || block.timestamp - postedAt > maxAge) {
                revert StaleFeatures(subject, postedAt, uint32(maxAge));
            }
        }
        return publisherId;
    }

    /// @dev Calls the verifier with STATICCALL: it cannot change state, here or anywhere it calls (no
    ///      re-entering the gate). Accepts only exactly one returned word equal to 1 (ABI `true`); a revert, no
    ///      or short return data, another value, or extra bytes reject. At most one word of return data is
    ///      copied (a verifier returning megabytes costs the gate nothing) and nothing is decoded beyond this
    ///      check, so whatever the verifier does ends in ProofRejected.
    function _verify(uint256 modelId, IHalo2Verifier verifier, bytes calldata proof, uint256[] calldata instances)
        private
        view
    {
        bytes memory callData = abi.encodeCall(IHalo2Verifier.verifyProof, (proof, instances));
        bool valid;
        assembly ("memory-safe") {
            // The one word lands in scratch space (0x00-0x1f), read only when exactly one word came back.
            let ok := staticcall(gas(), verifier, add(callData, WORD), mload(callData), 0x00, WORD)
            valid := and(ok, and(eq(returndatasize(), WORD), eq(mload(0x00), ABI_TRUE)))
        }
        if (!valid) revert ProofRejected(modelId);
    }

    /// @dev A model version's AcceptedModel as one word (see ACTING_MASK).
    function _loadAcceptedModel(uint256 modelId) private view returns (uint256 word) {
        AcceptedModel storage m = _acceptedModels[modelId];
        assembly ("memory-safe") {
            word := sload(m.slot)
        }
    }

    /// @dev Why a model version whose word (see {_loadAcceptedModel}) is not "accepted, not suspended" may
    ///      not act: not accepted comes first, as before suspensions existed.
    function _refuseModel(uint256 modelId, uint256 word) private pure {
        if (word & FLAG_MASK != ACCEPTED_FLAG) revert ModelNotAccepted(modelId);
        revert ModelSuspended(modelId);
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
        bytes32[] calldata subjects,
        uint256 context
    ) private {
        uint256 slots = subjects.length;
        for (uint256 slot; slot < slots; ++slot) {
            _actOnSlot(modelId, subjects[slot], decoder.decode(instances[index]), context);
            index += stride;
        }
    }

    /// @dev One slot: the consumer acts, the subject's record keeps its new state and marks the posting
    ///      consumed, in one write. The record is read afresh (a warm read): a subject filling a second slot
    ///      finds its posting consumed by the first and is skipped (one action per posting).
    function _actOnSlot(uint256 modelId, bytes32 subject, int256 output, uint256 context) private {
        SubjectRecord storage record = _records[subject];
        uint256 word;
        // Inline rather than _loadRecord: the slot is needed again for the write, and a shared helper taking
        // the storage pointer measured 24 gas more per subject at K = 64.
        assembly ("memory-safe") {
            word := sload(record.slot)
        }
        if (word & PUBLISHER_MASK == uint256(CONSUMED) << PUBLISHER_SHIFT) return;
        uint16 next = _act(modelId, subject, output, uint16(word >> STATE_SHIFT), context);
        word = (word & ~(PUBLISHER_MASK | STATE_MASK)) | (uint256(next) << STATE_SHIFT);
        assembly ("memory-safe") {
            sstore(record.slot, word)
        }
    }

    /// @dev The caller's current publisher id; reverts unless it may post.
    function _publisherId(address account) private view returns (uint16 publisherId) {
        publisherId = publisherIdOf[account];
        if (publisherId == 0) revert NotFeaturePublisher(account);
    }

    function _setMaxFeatureAge(uint32 maxFeatureAge_) private {
        if (maxFeatureAge_ == 0) revert ZeroMaxFeatureAge();
        uint32 previous = maxFeatureAge;
        uint32 cutoff = staleBefore;
        // Postings older than the previous limit are stale now; a higher limit must not revive them.
        if (maxFeatureAge_ > previous && previous != 0 && block.timestamp > previous) {
            uint32 staleNow = SafeCast.toUint32(block.timestamp - previous);
            if (staleNow > cutoff) {
                cutoff = staleNow;
                staleBefore = cutoff;
            }
        }
        maxFeatureAge = maxFeatureAge_;
        emit MaxFeatureAgeSet(maxFeatureAge_, cutoff);
    }
}

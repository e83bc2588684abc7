// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {InferenceGate} from "../src/InferenceGate.sol";
import {ModelRegistry} from "../src/ModelRegistry.sol";
import {InstanceLayout} from "../src/lib/InstanceLayout.sol";
import {IHalo2Verifier} from "../src/interfaces/IHalo2Verifier.sol";
import {Test} from "./utils/Test.sol";
import {Felts, MockProofs, MockVerifier} from "./utils/Fixtures.sol";

/// @notice The smallest consumer: records every output it is handed and counts acts per subject in its state.
contract RecordingGate is InferenceGate {
    int256[] public outputs;
    bytes32[] public actedSubjects;

    constructor(ModelRegistry r, address owner_, uint32 maxAge) InferenceGate(r, owner_, maxAge) {}

    function actCount() external view returns (uint256) {
        return outputs.length;
    }

    function _act(uint256, bytes32 subject, int256 output, uint16 state, uint256) internal override returns (uint16) {
        outputs.push(output);
        actedSubjects.push(subject);
        return state + 1;
    }
}

/// @notice Fuzz tests of InferenceGate's checks, through a recording consumer. The verifier is a MockVerifier
///         that accepts exactly one proof per instance list (see its NatSpec): these tests are about the gate's
///         logic; the real ezkl verifier is exercised by the Python on-chain tests.
/// @notice A verifier that returns fixed bytes, whatever it is asked: to test that only one `true` word counts.
contract RawVerifier {
    bytes internal _ret;

    function setReturn(bytes memory ret) external {
        _ret = ret;
    }

    fallback(bytes calldata) external returns (bytes memory) {
        return _ret;
    }
}

contract InferenceGateTest is Test {
    uint32 internal constant MAX_AGE = 1 hours;
    address internal constant PUBLISHER = address(0xB0B);

    ModelRegistry internal registry;
    MockVerifier internal verifier;
    RecordingGate internal gate;
    uint256 internal publicModel; // 2 slots, 2 public inputs and 1 output each
    uint256 internal hashedModel; // 1 slot, hashed inputs, 2 outputs, 1 param hash
    uint256 internal twinModel; // the same layout as publicModel, another version
    uint256 internal constant PARAM_HASH = 0xabc;

    function setUp() public {
        vm.warp(1_700_000_000);
        registry = new ModelRegistry(address(this));
        verifier = new MockVerifier();
        gate = new RecordingGate(registry, address(this), MAX_AGE);
        publicModel = registry.register(verifier, bytes32(uint256(1)), bytes32(uint256(1)), 7, Felts.publicLayout(2, 2), 0);
        hashedModel = registry.register(
            verifier, bytes32(uint256(2)), bytes32(uint256(2)), 7, Felts.hashedLayout(2),
            keccak256(abi.encodePacked(PARAM_HASH))
        );
        twinModel = registry.register(verifier, bytes32(uint256(4)), bytes32(uint256(4)), 7, Felts.publicLayout(2, 2), 0);
        gate.acceptModel(publicModel, 0);
        gate.acceptModel(hashedModel, 1);
        gate.acceptModel(twinModel, 0);
        gate.setFeaturePublisher(PUBLISHER, true);
    }

    // ------------------------------------------------------------------------------------------------ helpers

    function _publicInstances(uint256[4] memory inputs, uint256 out0, uint256 out1)
        internal
        pure
        returns (uint256[] memory xs)
    {
        xs = new uint256[](6);
        for (uint256 i; i < 4; ++i) xs[i] = inputs[i];
        xs[4] = out0;
        xs[5] = out1;
    }

    function _post(bytes32 subject, bytes32 commitment) internal {
        vm.prank(PUBLISHER);
        gate.postFeatures(subject, commitment);
    }

    function _postPublic(bytes32[] memory subjects, uint256[] memory xs) internal {
        _post(subjects[0], Felts.commitment(Felts.pair(xs[0], xs[1])));
        _post(subjects[1], Felts.commitment(Felts.pair(xs[2], xs[3])));
    }

    function _subjects(bytes32 a, bytes32 b) internal pure returns (bytes32[] memory s) {
        s = new bytes32[](2);
        s[0] = a;
        s[1] = b;
    }

    function _submit(uint256 id, uint256[] memory xs, bytes32[] memory subjects) internal returns (bytes32) {
        return gate.submit(id, MockProofs.proofFor(xs), xs, subjects);
    }

    // ---------------------------------------------------------------------------------------------- properties

    /// @notice A matching, fresh posting and a valid proof act once per slot, in slot order, with the chosen
    ///         output decoded (scale 7 -> 18 decimals); the postings are then consumed: the same statement, a
    ///         fresh proof or another accepted model's proof about them never acts again.
    function testFuzz_actsOnceThenRefusesReplay(uint256[4] memory inputs, uint64 out0, uint64 out1, bytes32 a, bytes32 b)
        public
    {
        vm.assume(a != b);
        uint256[] memory xs = _publicInstances(inputs, out0, out1);
        bytes32[] memory subjects = _subjects(a, b);
        _postPublic(subjects, xs);
        uint32 postedAt = uint32(block.timestamp);
        uint256[] memory postedAts = new uint256[](2);
        postedAts[0] = postedAts[1] = postedAt;
        bytes32 key = _submit(publicModel, xs, subjects);
        assertEq(key, keccak256(abi.encode(publicModel, subjects, postedAts, xs)), "statement key");
        assertEq(gate.actCount(), 2, "one act per slot");
        assertEq(gate.outputs(0), int256(uint256(out0)) * 1e18 / 128, "slot 0 output decoded");
        assertEq(gate.outputs(1), int256(uint256(out1)) * 1e18 / 128, "slot 1 output decoded");
        assertEq(gate.actedSubjects(1), b, "slot order");
        assertEq(uint256(gate.subjectRecord(a).publisherId), 0, "posting consumed");
        assertEq(uint256(gate.subjectRecord(a).state), 1, "state kept");
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.PostingAlreadyConsumed.selector, a, postedAt));
        _submit(publicModel, xs, subjects);
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.PostingAlreadyConsumed.selector, a, postedAt));
        _submit(twinModel, xs, subjects); // whatever the model
        assertEq(gate.actCount(), 2, "a replay does not act");
    }

    /// @notice Each posting is a new round, even of the same features in the same second; one round acts once.
    function testFuzz_repostingStartsANewRound(uint256[4] memory inputs, uint32 later) public {
        uint256[] memory xs = _publicInstances(inputs, 1, 2);
        bytes32[] memory subjects = _subjects("alice", "bob");
        _postPublic(subjects, xs);
        _submit(publicModel, xs, subjects);
        _postPublic(subjects, xs); // same second: still a new posting
        _submit(twinModel, xs, subjects);
        vm.expectRevert(
            abi.encodeWithSelector(InferenceGate.PostingAlreadyConsumed.selector, bytes32("alice"), uint32(block.timestamp))
        );
        _submit(publicModel, xs, subjects);
        vm.warp(block.timestamp + bound(later, 1, MAX_AGE));
        _postPublic(subjects, xs);
        _submit(publicModel, xs, subjects);
        assertEq(gate.actCount(), 6, "three rounds of two slots");
    }

    /// @notice A subject filling several slots (a padded batch) is acted on once, in its first slot.
    function testFuzz_paddedBatchActsOncePerSubject(uint256 x, uint256 y, uint64 out0, uint64 out1) public {
        uint256[4] memory inputs = [x, y, x, y];
        uint256[] memory xs = _publicInstances(inputs, out0, out1);
        _post("alice", Felts.commitment(Felts.pair(x, y)));
        _submit(publicModel, xs, _subjects("alice", "alice"));
        assertEq(gate.actCount(), 1, "acted once");
        assertEq(gate.outputs(0), int256(uint256(out0)) * 1e18 / 128, "the first slot's output");
    }

    /// @notice Twins (identical features) are independent postings: consuming one leaves the other open.
    function testFuzz_twinsAreIndependent(uint256 x, uint256 y) public {
        uint256[] memory xs = _publicInstances([x, y, x, y], 1, 2);
        bytes32[] memory subjects = _subjects("alice", "bob");
        _postPublic(subjects, xs);
        _post("carol", Felts.commitment(Felts.pair(x, y)));
        _submit(publicModel, xs, subjects);
        _submit(publicModel, xs, _subjects("carol", "carol"));
        assertEq(gate.actCount(), 3, "the twin acted");
    }

    /// @notice A withdrawn posting never acts (until a new posting); only an open posting can be withdrawn,
    ///         and only by a publisher.
    function testFuzz_withdrawnPostingNeverActs(uint256[4] memory inputs, address stranger, uint32 later) public {
        vm.assume(stranger != PUBLISHER);
        uint256[] memory xs = _publicInstances(inputs, 1, 2);
        bytes32[] memory subjects = _subjects("alice", "bob");
        _postPublic(subjects, xs);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.NotFeaturePublisher.selector, stranger));
        gate.withdrawFeatures("alice");
        vm.prank(PUBLISHER);
        gate.withdrawFeatures("alice");
        assertEq(uint256(gate.subjectRecord("alice").postedAt), 0, "withdrawn");
        vm.prank(PUBLISHER);
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.NoOpenPosting.selector, bytes32("alice")));
        gate.withdrawFeatures("alice");
        vm.warp(block.timestamp + bound(later, 0, MAX_AGE));
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.NoFeaturesPosted.selector, bytes32("alice")));
        _submit(publicModel, xs, subjects);
        assertEq(gate.actCount(), 0, "nothing acted");
        _postPublic(subjects, xs);
        _submit(publicModel, xs, subjects);
        vm.prank(PUBLISHER);
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.NoOpenPosting.selector, bytes32("alice")));
        gate.withdrawFeatures("alice"); // consumed: nothing to withdraw
    }

    /// @notice A disallowed publisher's postings are void for good, even once it is allowed again (a new id).
    function testFuzz_revokedPublishersPostingsNeverAct(uint256[4] memory inputs, uint32 later) public {
        uint256[] memory xs = _publicInstances(inputs, 1, 2);
        bytes32[] memory subjects = _subjects("alice", "bob");
        _postPublic(subjects, xs);
        uint16 oldId = gate.publisherIdOf(PUBLISHER);
        gate.setFeaturePublisher(PUBLISHER, false);
        assertFalse(gate.isActivePublisherId(oldId), "id retired");
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.PublisherRevoked.selector, bytes32("alice"), oldId));
        _submit(publicModel, xs, subjects);
        gate.setFeaturePublisher(PUBLISHER, true);
        uint16 newId = gate.publisherIdOf(PUBLISHER);
        assertTrue(newId != oldId && gate.isActivePublisherId(newId), "a new id");
        assertEq(uint256(gate.publisherIdCount()), uint256(newId), "id count");
        gate.setFeaturePublisher(PUBLISHER, true); // allowing an allowed account keeps its id
        assertEq(uint256(gate.publisherIdOf(PUBLISHER)), uint256(newId), "id kept");
        vm.warp(block.timestamp + bound(later, 0, MAX_AGE));
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.PublisherRevoked.selector, bytes32("alice"), oldId));
        _submit(publicModel, xs, subjects);
        assertEq(gate.actCount(), 0, "nothing acted");
        _postPublic(subjects, xs);
        _submit(publicModel, xs, subjects);
        assertEq(gate.actCount(), 2, "a new posting acts");
    }

    /// @notice Raising maxFeatureAge extends fresh postings but never revives a stale one.
    function testFuzz_raisingMaxAgeNeverRevivesStale(uint256[4] memory inputs, uint32 age, uint32 extra, uint32 newAge)
        public
    {
        uint256[] memory xs = _publicInstances(inputs, 1, 2);
        bytes32[] memory subjects = _subjects("alice", "bob");
        _postPublic(subjects, xs);
        uint32 postedAt = uint32(block.timestamp);
        uint256 elapsed = bound(age, uint256(MAX_AGE) + 1, 30 days);
        vm.warp(block.timestamp + elapsed);
        newAge = uint32(bound(newAge, elapsed + bound(extra, 0, 30 days), type(uint32).max));
        gate.setMaxFeatureAge(newAge);
        assertTrue(gate.staleBefore() > postedAt, "staleBefore moved past the posting");
        vm.expectRevert(
            abi.encodeWithSelector(InferenceGate.StaleFeatures.selector, bytes32("alice"), postedAt, newAge)
        );
        _submit(publicModel, xs, subjects);
        gate.setMaxFeatureAge(MAX_AGE); // lowering, then raising again: still stale
        gate.setMaxFeatureAge(newAge);
        vm.expectRevert(
            abi.encodeWithSelector(InferenceGate.StaleFeatures.selector, bytes32("alice"), postedAt, newAge)
        );
        _submit(publicModel, xs, subjects);
        _postPublic(subjects, xs); // a fresh posting acts under the raised limit
        _submit(publicModel, xs, subjects);
        assertEq(gate.actCount(), 2, "only the fresh posting acted");
    }

    /// @notice Raising maxFeatureAge while a posting is fresh extends it.
    function testFuzz_raisingMaxAgeExtendsFresh(uint256[4] memory inputs, uint32 age, uint32 newAge) public {
        uint256[] memory xs = _publicInstances(inputs, 1, 2);
        bytes32[] memory subjects = _subjects("alice", "bob");
        _postPublic(subjects, xs);
        vm.warp(block.timestamp + bound(age, 0, MAX_AGE));
        newAge = uint32(bound(newAge, uint256(MAX_AGE) + 1, 365 days));
        gate.setMaxFeatureAge(newAge);
        vm.warp(block.timestamp + (newAge - MAX_AGE));
        _submit(publicModel, xs, subjects);
        assertEq(gate.actCount(), 2, "extended");
    }

    /// @notice Only exactly one returned word equal to 1 counts as a valid proof.
    function testFuzz_onlyOneTrueWordCounts(uint256[4] memory inputs, bytes memory ret) public {
        vm.assume(keccak256(ret) != keccak256(abi.encode(true)));
        RawVerifier raw = new RawVerifier();
        uint256 rawModel = registry.register(
            IHalo2Verifier(address(raw)), bytes32(uint256(9)), bytes32(uint256(9)), 7, Felts.publicLayout(2, 2), 0
        );
        gate.acceptModel(rawModel, 0);
        uint256[] memory xs = _publicInstances(inputs, 1, 2);
        bytes32[] memory subjects = _subjects("alice", "bob");
        _postPublic(subjects, xs);
        raw.setReturn(ret);
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.ProofRejected.selector, rawModel));
        _submit(rawModel, xs, subjects);
        raw.setReturn(abi.encode(uint256(2)));
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.ProofRejected.selector, rawModel));
        _submit(rawModel, xs, subjects);
        raw.setReturn(abi.encode(true, true));
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.ProofRejected.selector, rawModel));
        _submit(rawModel, xs, subjects);
        raw.setReturn(abi.encode(true));
        _submit(rawModel, xs, subjects);
        assertEq(gate.actCount(), 2, "acted once, on `true`");
    }

    /// @notice renounceOwnership always reverts, whoever calls; the owner stays.
    function testFuzz_renounceOwnershipAlwaysReverts(address caller) public {
        vm.prank(caller);
        vm.expectRevert(abi.encodeWithSignature("OwnershipCannotBeRenounced()"));
        gate.renounceOwnership();
        vm.expectRevert(abi.encodeWithSignature("OwnershipCannotBeRenounced()"));
        registry.renounceOwnership();
        assertEq(gate.owner(), address(this), "owner");
        assertEq(registry.owner(), address(this), "registry owner");
    }

    /// @notice Any edited input instance no longer matches its subject's posting.
    function testFuzz_editedInputsDoNotMatchThePosting(uint256[4] memory inputs, uint8 which, uint256 delta) public {
        uint256[] memory xs = _publicInstances(inputs, 1, 2);
        bytes32[] memory subjects = _subjects("alice", "bob");
        _postPublic(subjects, xs);
        uint256 i = bound(which, 0, 3);
        vm.assume(delta != 0);
        unchecked {
            xs[i] += delta;
        }
        vm.expectRevert(); // FeatureCommitmentMismatch(subject, posted, proven)
        _submit(publicModel, xs, subjects);
        assertEq(gate.actCount(), 0, "nothing acted");
    }

    /// @notice A proof about other subjects (the postings swapped) is refused.
    function testFuzz_otherSubjectsFeaturesAreRefused(uint256[4] memory inputs) public {
        vm.assume(inputs[0] != inputs[2] || inputs[1] != inputs[3]);
        uint256[] memory xs = _publicInstances(inputs, 1, 2);
        _postPublic(_subjects("alice", "bob"), xs);
        vm.expectRevert();
        _submit(publicModel, xs, _subjects("bob", "alice"));
    }

    /// @notice Features are fresh up to maxFeatureAge seconds, stale one second later; never posted is refused.
    function testFuzz_freshnessBoundary(uint256[4] memory inputs, uint32 maxAge) public {
        maxAge = uint32(bound(maxAge, 1, 365 days));
        gate.setMaxFeatureAge(maxAge);
        uint256[] memory xs = _publicInstances(inputs, 1, 2);
        bytes32[] memory subjects = _subjects("alice", "bob");
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.NoFeaturesPosted.selector, bytes32("alice")));
        _submit(publicModel, xs, subjects);
        _postPublic(subjects, xs);
        uint32 postedAt = uint32(block.timestamp);
        vm.warp(block.timestamp + maxAge + 1);
        vm.expectRevert(
            abi.encodeWithSelector(InferenceGate.StaleFeatures.selector, bytes32("alice"), postedAt, maxAge)
        );
        _submit(publicModel, xs, subjects);
        vm.warp(block.timestamp - 1);
        _submit(publicModel, xs, subjects);
    }

    /// @notice Hashed inputs bind by the hash instance; hashed weights must equal the registered commitment.
    function testFuzz_hashedInputsAndWeights(uint256 inputHash, uint256 params, uint64 out) public {
        vm.assume(params != PARAM_HASH);
        uint256[] memory xs = new uint256[](4); // [input hash][param hash][out0, out1]
        xs[0] = inputHash;
        xs[1] = params;
        xs[3] = out;
        bytes32[] memory subjects = new bytes32[](1);
        subjects[0] = "carol";
        _post("carol", bytes32(inputHash));
        vm.expectRevert(
            abi.encodeWithSelector(
                InferenceGate.WeightCommitmentMismatch.selector,
                hashedModel,
                keccak256(abi.encodePacked(PARAM_HASH)),
                keccak256(abi.encodePacked(params))
            )
        );
        _submit(hashedModel, xs, subjects);
        xs[1] = PARAM_HASH;
        _submit(hashedModel, xs, subjects);
        assertEq(gate.outputs(0), int256(uint256(out)) * 1e18 / 128, "acts on output 1");
    }

    /// @notice Only an accepted, registered, active model acts; a wrong instance or subject count is refused.
    function testFuzz_modelMustBeAcceptedAndActive(uint256[4] memory inputs, uint256 unknownId) public {
        uint256[] memory xs = _publicInstances(inputs, 1, 2);
        bytes32[] memory subjects = _subjects("alice", "bob");
        _postPublic(subjects, xs);
        uint256 other = registry.register(verifier, bytes32(uint256(3)), bytes32(uint256(3)), 7, Felts.publicLayout(2, 2), 0);
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.ModelNotAccepted.selector, other));
        _submit(other, xs, subjects);
        vm.assume(unknownId == 0 || unknownId > other);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownModel.selector, unknownId));
        _submit(unknownId, xs, subjects);
        uint256[] memory shorter = new uint256[](5);
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.InstanceCountMismatch.selector, publicModel, 6, 5));
        _submit(publicModel, shorter, subjects);
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.SubjectCountMismatch.selector, 2, 1));
        gate.submit(publicModel, MockProofs.proofFor(xs), xs, new bytes32[](1));
        gate.dropModel(publicModel);
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.ModelNotAccepted.selector, publicModel));
        _submit(publicModel, xs, subjects);
        gate.acceptModel(publicModel, 0);
        registry.revoke(publicModel);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.RevokedModel.selector, publicModel));
        _submit(publicModel, xs, subjects);
        assertEq(gate.actCount(), 0, "nothing acted");
    }

    /// @notice A proof the verifier refuses -- another proof, `false`, or a revert -- is ProofRejected and
    ///         consumes nothing.
    function testFuzz_rejectedProofsConsumeNothing(uint256[4] memory inputs, bytes memory badProof, uint8 mode) public {
        uint256[] memory xs = _publicInstances(inputs, 1, 2);
        bytes32[] memory subjects = _subjects("alice", "bob");
        _postPublic(subjects, xs);
        bytes memory proof = MockProofs.proofFor(xs);
        uint256 m = bound(mode, 0, 2);
        if (m == 0) {
            vm.assume(keccak256(badProof) != keccak256(proof));
            proof = badProof;
        } else {
            verifier.setMode(MockVerifier.Mode(m));
        }
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.ProofRejected.selector, publicModel));
        gate.submit(publicModel, proof, xs, subjects);
        verifier.setMode(MockVerifier.Mode.CheckBinding);
        _submit(publicModel, xs, subjects); // the statement was not consumed by the refusal
    }

    /// @notice Paused: no submission acts; postings continue; unpaused, the same statement acts.
    function testFuzz_pausedNothingMoves(uint256[4] memory inputs) public {
        uint256[] memory xs = _publicInstances(inputs, 1, 2);
        bytes32[] memory subjects = _subjects("alice", "bob");
        gate.pause();
        _postPublic(subjects, xs);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        _submit(publicModel, xs, subjects);
        assertEq(gate.actCount(), 0, "nothing acted while paused");
        gate.unpause();
        _submit(publicModel, xs, subjects);
    }

    /// @notice Only the owner configures; only publishers post.
    function testFuzz_onlyOwnerConfigures(address stranger, bytes32 subject, bytes32 commitment) public {
        vm.assume(stranger != address(this) && stranger != PUBLISHER);
        bytes memory denied = abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger);
        vm.startPrank(stranger);
        vm.expectRevert(denied);
        gate.setFeaturePublisher(stranger, true);
        vm.expectRevert(denied);
        gate.setMaxFeatureAge(1);
        vm.expectRevert(denied);
        gate.acceptModel(publicModel, 0);
        vm.expectRevert(denied);
        gate.dropModel(publicModel);
        vm.expectRevert(denied);
        gate.pause();
        vm.expectRevert(denied);
        gate.unpause();
        vm.expectRevert(denied);
        gate.transferOwnership(stranger);
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.NotFeaturePublisher.selector, stranger));
        gate.postFeatures(subject, commitment);
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.NotFeaturePublisher.selector, stranger));
        gate.withdrawFeatures(subject);
        vm.stopPrank();
        assertEq(gate.owner(), address(this), "owner");
        assertEq(uint256(gate.maxFeatureAge()), MAX_AGE, "max age");
        assertFalse(gate.isFeaturePublisher(stranger), "publisher");
        assertEq(uint256(gate.subjectRecord(subject).postedAt), 0, "nothing posted");
    }

    /// @notice The stored digest is the commitment's low 192 bits.
    function testFuzz_commitmentDigest(bytes32 c) public view {
        assertEq(uint256(uint192(gate.commitmentDigest(c))), uint256(c) & type(uint192).max, "low 192 bits");
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {InferenceGate} from "../src/InferenceGate.sol";
import {ModelRegistry} from "../src/ModelRegistry.sol";
import {RiskAdjustedLending} from "../src/RiskAdjustedLending.sol";
import {Test, Vm} from "./utils/Test.sol";
import {Felts, MockProofs, MockVerifier} from "./utils/Fixtures.sol";

/// @notice The model breaker (a guardian suspends a model version, the owner resumes it) and the wait between
///         a subject's acted-on posting and its next one, on the lending gate. The verifier is a MockVerifier
///         (see its NatSpec): the gate's rules, not the proofs, are tested.
contract BreakerTest is Test {
    address internal constant PUBLISHER = address(0xB0B);
    address internal constant GUARDIAN = address(0x6A4D);
    uint32 internal constant MAX_AGE = 1 hours;
    uint32 internal constant STEP = 500;
    bytes32 internal constant ALICE = bytes32(uint256(0xA11CE));

    ModelRegistry internal registry;
    RiskAdjustedLending internal lending;
    uint256 internal modelId; // one borrower per proof, two public inputs
    uint256 internal otherModel; // the same layout, another version

    function setUp() public {
        vm.warp(1_700_000_000);
        registry = new ModelRegistry(address(this));
        MockVerifier verifier = new MockVerifier();
        lending = new RiskAdjustedLending(
            registry,
            address(this),
            MAX_AGE,
            RiskAdjustedLending.RateTerms({baseRateBps: 200, slopeBps: 3000, maxRateStepBps: STEP, initialRateBps: 1000})
        );
        modelId = registry.register(verifier, bytes32(uint256(1)), bytes32(uint256(1)), 7, Felts.publicLayout(1, 2), 0);
        otherModel = registry.register(verifier, bytes32(uint256(2)), bytes32(uint256(2)), 7, Felts.publicLayout(1, 2), 0);
        lending.acceptModel(modelId, 0);
        lending.acceptModel(otherModel, 0);
        lending.setFeaturePublisher(PUBLISHER, true);
        lending.setGuardian(GUARDIAN);
    }

    // ------------------------------------------------------------------------------------------------ helpers

    function _instances(uint256 x, uint256 pdFelt) internal pure returns (uint256[] memory xs) {
        xs = new uint256[](3);
        xs[0] = x;
        xs[1] = 1;
        xs[2] = pdFelt;
    }

    function _post(bytes32 subject, uint256 x) internal {
        vm.prank(PUBLISHER);
        lending.postFeatures(subject, Felts.commitment(Felts.pair(x, 1)));
    }

    function _one(bytes32 subject) internal pure returns (bytes32[] memory s) {
        s = new bytes32[](1);
        s[0] = subject;
    }

    function _submit(uint256 id, bytes32 subject, uint256 x, uint256 pdFelt) internal returns (bool ok, bytes memory err) {
        uint256[] memory xs = _instances(x, pdFelt);
        try lending.submit(id, MockProofs.proofFor(xs), xs, _one(subject)) {
            ok = true;
        } catch (bytes memory e) {
            err = e;
        }
    }

    function _only(Vm.Log[] memory logs, bytes32 topic0) internal pure returns (Vm.Log memory log) {
        uint256 found;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == topic0) {
                log = logs[i];
                ++found;
            }
        }
        if (found != 1) revert AssertionFailed("expected exactly one such event");
    }

    // ---------------------------------------------------------------------------------------------- guardian

    /// @notice Only the owner sets the guardian (GuardianSet names the previous and the new one); the zero
    ///         address means none.
    function testFuzz_onlyTheOwnerSetsTheGuardian(address stranger, address next) public {
        vm.assume(stranger != address(this));
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        lending.setGuardian(next);
        vm.prank(GUARDIAN);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, GUARDIAN));
        lending.setGuardian(next);
        vm.recordLogs();
        lending.setGuardian(next);
        Vm.Log memory log = _only(vm.getRecordedLogs(), InferenceGate.GuardianSet.selector);
        assertEq(log.topics[1], bytes32(uint256(uint160(GUARDIAN))), "previous guardian");
        assertEq(log.topics[2], bytes32(uint256(uint160(next))), "new guardian");
        assertEq(lending.guardian(), next, "guardian");
    }

    /// @notice The guardian and the owner suspend, nobody else; only the owner resumes. Each emits its event;
    ///         suspending twice or resuming an unsuspended model is refused.
    function testFuzz_whoSuspendsAndResumes(address stranger) public {
        vm.assume(stranger != address(this) && stranger != GUARDIAN);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.NotGuardian.selector, stranger));
        lending.suspendModel(modelId);

        vm.recordLogs();
        vm.prank(GUARDIAN);
        lending.suspendModel(modelId);
        Vm.Log memory log = _only(vm.getRecordedLogs(), InferenceGate.ModelSuspendedBy.selector);
        assertEq(log.topics[1], bytes32(modelId), "suspended model");
        assertEq(log.topics[2], bytes32(uint256(uint160(GUARDIAN))), "suspended by");
        assertTrue(lending.isModelSuspended(modelId), "suspended");
        assertFalse(lending.isModelSuspended(otherModel), "the other model is not");
        assertTrue(lending.acceptedModel(modelId).accepted, "still accepted");

        vm.prank(GUARDIAN);
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.ModelAlreadySuspended.selector, modelId));
        lending.suspendModel(modelId);
        vm.prank(GUARDIAN);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, GUARDIAN));
        lending.resumeModel(modelId);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        lending.resumeModel(modelId);

        vm.recordLogs();
        lending.resumeModel(modelId);
        log = _only(vm.getRecordedLogs(), InferenceGate.ModelResumed.selector);
        assertEq(log.topics[1], bytes32(modelId), "resumed model");
        assertFalse(lending.isModelSuspended(modelId), "resumed");
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.ModelNotSuspended.selector, modelId));
        lending.resumeModel(modelId);

        lending.suspendModel(modelId); // the owner may suspend too
        assertTrue(lending.isModelSuspended(modelId), "suspended by the owner");
    }

    /// @notice With no guardian (zero address), the former guardian cannot suspend; the owner still can.
    function test_noGuardianLeavesTheOwner() public {
        lending.setGuardian(address(0));
        vm.prank(GUARDIAN);
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.NotGuardian.selector, GUARDIAN));
        lending.suspendModel(modelId);
        lending.suspendModel(modelId);
        assertTrue(lending.isModelSuspended(modelId), "suspended by the owner");
    }

    /// @notice A suspended model's valid proofs are refused with ModelSuspended and consume nothing; another
    ///         accepted model still acts; once resumed, the same open posting acts.
    function testFuzz_suspensionBlocksSubmitAndResumeRestores(uint256 x, uint8 pd) public {
        uint256 pdFelt = bound(pd, 0, 128);
        _post(ALICE, x);
        vm.prank(GUARDIAN);
        lending.suspendModel(modelId);
        (bool ok, bytes memory err) = _submit(modelId, ALICE, x, pdFelt);
        assertFalse(ok, "a suspended model acted");
        assertEq(keccak256(err), keccak256(abi.encodeWithSelector(InferenceGate.ModelSuspended.selector, modelId)), "error");
        assertEq(uint256(lending.subjectRecord(ALICE).publisherId), 1, "posting still open");
        assertEq(lending.rateOf(address(uint160(uint256(ALICE)))), 1000, "rate unchanged");

        lending.resumeModel(modelId);
        (ok,) = _submit(modelId, ALICE, x, pdFelt);
        assertTrue(ok, "the resumed model did not act");
        assertEq(uint256(lending.subjectRecord(ALICE).publisherId), 0, "consumed");

        // Suspending one model leaves the others acting.
        bytes32 bob = bytes32(uint256(0xB0B0));
        _post(bob, x);
        lending.suspendModel(modelId);
        (ok,) = _submit(otherModel, bob, x, pdFelt);
        assertTrue(ok, "another model was held up");
    }

    /// @notice Dropping and accepting a suspended model again, or accepting it for another output, never lifts
    ///         the suspension; a dropped model is refused as not accepted first.
    function test_suspensionSurvivesDropAndAccept() public {
        _post(ALICE, 3);
        vm.prank(GUARDIAN);
        lending.suspendModel(modelId);
        lending.acceptModel(modelId, 0);
        assertTrue(lending.isModelSuspended(modelId), "accept again lifted it");
        lending.dropModel(modelId);
        assertTrue(lending.isModelSuspended(modelId), "drop lifted it");
        (, bytes memory err) = _submit(modelId, ALICE, 3, 64);
        assertEq(keccak256(err), keccak256(abi.encodeWithSelector(InferenceGate.ModelNotAccepted.selector, modelId)), "dropped");
        lending.acceptModel(modelId, 0);
        (, err) = _submit(modelId, ALICE, 3, 64);
        assertEq(keccak256(err), keccak256(abi.encodeWithSelector(InferenceGate.ModelSuspended.selector, modelId)), "still suspended");
        assertEq(uint256(lending.acceptedModel(modelId).outputIndex), 0, "output index");
        lending.resumeModel(modelId);
        (bool ok,) = _submit(modelId, ALICE, 3, 64);
        assertTrue(ok, "resumed");
    }

    /// @notice A model id no gate accepts yet can be suspended in advance: accepting it later does not lift it.
    function testFuzz_suspendInAdvance(uint256 id) public {
        vm.assume(id != modelId && id != otherModel);
        vm.prank(GUARDIAN);
        lending.suspendModel(id);
        assertTrue(lending.isModelSuspended(id), "suspended");
        assertFalse(lending.acceptedModel(id).accepted, "not accepted by suspending");
    }

    // --------------------------------------------------------------------------------------- posting interval

    /// @notice Only the owner sets the interval, with MinPostingIntervalSet.
    function testFuzz_onlyTheOwnerSetsTheInterval(address stranger, uint32 interval) public {
        vm.assume(stranger != address(this));
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        lending.setMinPostingInterval(interval);
        vm.prank(GUARDIAN);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, GUARDIAN));
        lending.setMinPostingInterval(interval);
        vm.recordLogs();
        lending.setMinPostingInterval(interval);
        Vm.Log memory log = _only(vm.getRecordedLogs(), InferenceGate.MinPostingIntervalSet.selector);
        assertEq(abi.decode(log.data, (uint256)), interval, "event");
        assertEq(uint256(lending.minPostingInterval()), interval, "interval");
        assertEq(lending.guardian(), GUARDIAN, "the guardian shares the slot, untouched");
    }

    /// @notice After an action, the next posting for that subject waits the interval (PostingTooSoon names
    ///         when it may come), then is allowed; other subjects are not held up; a correction (replacing a
    ///         posting nobody acted on) never waits.
    function testFuzz_nextRoundWaitsTheInterval(uint32 interval, uint32 wait) public {
        interval = uint32(bound(interval, 1, 30 days));
        wait = uint32(bound(wait, 0, 2 * uint256(interval)));
        lending.setMinPostingInterval(interval);
        _post(ALICE, 1);
        _post(ALICE, 2); // a correction at once
        uint32 postedAt = uint32(block.timestamp);
        (bool ok,) = _submit(modelId, ALICE, 2, 64);
        assertTrue(ok, "acted");
        bytes32 bob = bytes32(uint256(0xB0B0));
        _post(bob, 1); // another subject
        vm.warp(block.timestamp + wait);
        if (wait < interval) {
            vm.prank(PUBLISHER);
            vm.expectRevert(
                abi.encodeWithSelector(InferenceGate.PostingTooSoon.selector, ALICE, postedAt, uint256(postedAt) + interval)
            );
            lending.postFeatures(ALICE, Felts.commitment(Felts.pair(3, 1)));
            vm.warp(uint256(postedAt) + interval);
        }
        _post(ALICE, 3);
        assertEq(uint256(lending.subjectRecord(ALICE).postedAt), block.timestamp, "the next round opened");
    }

    /// @notice The guarantee against a compromised publisher, whatever it does (post, correct, withdraw, submit
    ///         its own proofs, let time pass): the postings acted on for one borrower were posted at least the
    ///         interval apart, so within the elapsed time T at most (T + maxFeatureAge) / interval + 1 actions
    ///         happened, each moving the rate at most one breaker step.
    function testFuzz_actsAtMostOncePerInterval(uint8[24] memory ops, uint16[24] memory waits, uint32 interval) public {
        interval = uint32(bound(interval, 1 minutes, 6 hours));
        lending.setMinPostingInterval(interval);
        uint256 start = block.timestamp;
        for (uint256 i; i < ops.length; ++i) {
            vm.warp(block.timestamp + waits[i] % 2 hours);
            uint256 op = ops[i] % 3;
            if (op == 0) {
                vm.prank(PUBLISHER);
                try lending.postFeatures(ALICE, Felts.commitment(Felts.pair(_x + 1, 1))) {
                    ++_x;
                } catch {}
            } else if (op == 1) {
                vm.prank(PUBLISHER);
                try lending.withdrawFeatures(ALICE) {} catch {}
            } else {
                _submitRound(interval, ops[i] % 2 == 0 ? 128 : 0); // PD 1 or 0: full steps
            }
        }
        assertLe(_actions, (block.timestamp - start + MAX_AGE) / interval + 1, "actions over the elapsed time");
    }

    // testFuzz_actsAtMostOncePerInterval's state (storage: the stack is full)
    uint256 internal _x; // the features last posted
    uint256 internal _actions;
    uint256 internal _lastActedPostedAt;

    function _submitRound(uint32 interval, uint256 pdFelt) internal {
        address borrower = address(uint160(uint256(ALICE)));
        uint256 postedAt = lending.subjectRecord(ALICE).postedAt;
        uint256 before = lending.rateOf(borrower);
        (bool ok,) = _submit(modelId, ALICE, _x, pdFelt);
        if (!ok) return;
        if (_actions > 0) assertGe(postedAt, _lastActedPostedAt + interval, "two actions within the interval");
        uint256 after_ = lending.rateOf(borrower);
        assertLe(after_ > before ? after_ - before : before - after_, STEP, "more than one step");
        _lastActedPostedAt = postedAt;
        ++_actions;
    }

    /// @notice Withdrawing an open posting does not shorten the wait: the posting withdrawn itself waited, so
    ///         a posting after it is at least the interval after the last acted-on one.
    function testFuzz_withdrawingDoesNotShortenTheWait(uint32 interval, uint32 early) public {
        interval = uint32(bound(interval, 2, 30 days));
        early = uint32(bound(early, 1, interval - 1));
        lending.setMinPostingInterval(interval);
        _post(ALICE, 1);
        uint32 actedAt = uint32(block.timestamp);
        (bool ok,) = _submit(modelId, ALICE, 1, 64);
        assertTrue(ok, "acted");
        vm.warp(block.timestamp + early);
        vm.prank(PUBLISHER);
        vm.expectRevert(abi.encodeWithSelector(InferenceGate.NoOpenPosting.selector, ALICE));
        lending.withdrawFeatures(ALICE); // an acted-on posting cannot be withdrawn (to reset the wait)
        vm.prank(PUBLISHER);
        vm.expectRevert(
            abi.encodeWithSelector(InferenceGate.PostingTooSoon.selector, ALICE, actedAt, uint256(actedAt) + interval)
        );
        lending.postFeatures(ALICE, Felts.commitment(Felts.pair(2, 1)));
        vm.warp(uint256(actedAt) + interval);
        _post(ALICE, 2);
        vm.prank(PUBLISHER);
        lending.withdrawFeatures(ALICE);
        _post(ALICE, 3); // a correction after withdrawing: at least the interval after the acted-on posting
        (ok,) = _submit(modelId, ALICE, 3, 64);
        assertTrue(ok, "the corrected posting acted");
        vm.prank(PUBLISHER);
        vm.expectRevert(
            abi.encodeWithSelector(
                InferenceGate.PostingTooSoon.selector, ALICE, uint32(block.timestamp), block.timestamp + interval
            )
        );
        lending.postFeatures(ALICE, Felts.commitment(Felts.pair(4, 1)));
    }
}

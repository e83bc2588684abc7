// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ModelRegistry} from "../../src/ModelRegistry.sol";
import {AdaptiveCouponBond} from "../../src/AdaptiveCouponBond.sol";
import {StdInvariant, Test, Vm} from "../utils/Test.sol";
import {Felts, MockProofs, MockVerifier} from "../utils/Fixtures.sol";

/// @title BondHandler
/// @notice Random sequences of postings (the current, a past or a future period's window), time, submissions
///         (any forecast, sometimes a forged proof), pauses and strangers' configuration calls against an
///         AdaptiveCouponBond it owns. Each property has its own ghost counter. The verifier is a MockVerifier
///         bound to the instances (see its NatSpec); real proofs are the Python on-chain tests'.
contract BondHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    address public constant PUBLISHER = address(0xB0B);
    address public constant STRANGER = address(0xBAD);
    uint64 public constant START = 1_000_000;
    uint64 public constant PERIOD = 1 days;
    uint32 public constant FLOOR = 100;
    uint32 public constant CAP = 800;
    uint32 public constant STEP = 50;

    ModelRegistry public immutable registry;
    AdaptiveCouponBond public immutable bond;
    uint256 public immutable modelId;

    mapping(uint256 period => uint256) public adjustments;
    mapping(uint256 period => uint256) internal _window; // posted window + 1 (0: none, or withdrawn)
    mapping(uint256 period => uint256) internal _postedAt; // the posting's time
    mapping(uint256 period => bool) internal _consumed; // the period's posting was acted on
    mapping(uint256 period => uint256) public startCoupon; // the coupon the period started with + 1 (0: not adjusted)
    bool public pausedG;
    uint256 public couponAtPause;

    uint256 public doubleAdjustments; // a posting acted twice
    uint256 public voidActs; // a withdrawn posting acted
    uint256 public unexpectedOutcomes; // acted or refused other than the reference model says
    uint256 public stepViolations; // an adjustment set the coupon more than STEP from the period's start
    uint256 public notCurrentPeriod; // an adjustment for a period other than the current one
    uint256 public movedWhilePaused;
    uint256 public unauthorizedChanges;
    uint256 public wrongAdjustments; // the coupon moved other than the rule says
    uint256 public acted;

    constructor() {
        vm.warp(START);
        registry = new ModelRegistry(address(this));
        MockVerifier verifier = new MockVerifier();
        bond = new AdaptiveCouponBond(
            registry,
            address(this),
            6 hours,
            AdaptiveCouponBond.CouponTerms({
                initialCouponBps: 400,
                floorBps: FLOOR,
                capBps: CAP,
                stepBps: STEP,
                raiseAbove: 3e18,
                cutBelow: 2e18,
                startTime: START,
                periodLength: PERIOD
            })
        );
        modelId = registry.register(verifier, bytes32(uint256(1)), bytes32(uint256(1)), 7, Felts.publicLayout(1, 1), 0);
        bond.acceptModel(modelId, 0);
        bond.setFeaturePublisher(PUBLISHER, true);
    }

    function _period(uint256 sel) internal view returns (uint256) {
        uint256 current = (block.timestamp - START) / PERIOD;
        uint256 k = sel % 8; // mostly the current period, sometimes the previous or the next
        return k == 5 && current > 0 ? current - 1 : k == 6 ? current + 1 : current;
    }

    function post(uint256 periodSel, uint256 window) external {
        uint256 p = _period(periodSel);
        window %= 4;
        uint256[] memory inputs = new uint256[](1);
        inputs[0] = window;
        bytes32 subject = bond.periodSubject(p); // before the prank: a call would use it up
        vm.prank(PUBLISHER);
        bond.postFeatures(subject, Felts.commitment(inputs));
        _window[p] = window + 1;
        _postedAt[p] = block.timestamp;
        _consumed[p] = false;
        _checkPaused();
    }

    /// @notice The publisher withdraws a period's posting (refused unless it is open).
    function withdraw(uint256 periodSel) external {
        uint256 p = _period(periodSel);
        bool open = _window[p] != 0 && !_consumed[p];
        bytes32 subject = bond.periodSubject(p);
        vm.prank(PUBLISHER);
        try bond.withdrawFeatures(subject) {
            if (!open) ++unexpectedOutcomes;
            _window[p] = 0;
        } catch {
            if (open) ++unexpectedOutcomes;
        }
    }

    function warp(uint256 dt) external {
        vm.warp(block.timestamp + dt % 12 hours);
        _checkPaused();
    }

    function submit(uint256 periodSel, int128 forecastFelt, uint256 flags) external {
        uint256 p = _period(periodSel);
        int256 f = int256(forecastFelt) % 1024; // forecasts around the thresholds (3.0 and 2.0 are 384 and 256)
        uint256[] memory xs = new uint256[](2);
        xs[0] = _window[p] == 0 ? flags % 4 : _window[p] - 1;
        xs[1] = Felts.encode(f);
        bytes32[] memory subjects = new bytes32[](1);
        subjects[0] = bond.periodSubject(p);
        bytes memory proof = flags % 16 == 7 ? bytes("forged") : MockProofs.proofFor(xs);
        uint256 old = bond.couponBps();
        bool paused = bond.paused();
        uint256 current = bond.currentPeriod();
        bool wasConsumed = _consumed[p];
        bool wasOpen = _window[p] != 0;
        bool expected = !paused && p == current && wasOpen && !wasConsumed && xs[0] == _window[p] - 1
            && block.timestamp - _postedAt[p] <= 6 hours && keccak256(proof) == keccak256(MockProofs.proofFor(xs));
        try bond.submit(modelId, proof, xs, subjects) {
            ++acted;
            if (!expected) ++unexpectedOutcomes;
            if (paused) ++movedWhilePaused;
            if (wasConsumed) ++doubleAdjustments;
            if (!wasOpen) ++voidActs;
            if (p != current) ++notCurrentPeriod;
            ++adjustments[p];
            _consumed[p] = true;
            if (startCoupon[p] == 0) startCoupon[p] = old + 1;
            uint256 start = startCoupon[p] - 1;
            uint256 next = bond.couponBps();
            uint256 moved = next > start ? next - start : start - next;
            if (moved > STEP) ++stepViolations;
            int256 forecast = f * 1e18 / 128;
            uint256 want = start;
            if (forecast > 3e18) want = start + STEP > CAP ? CAP : start + STEP;
            else if (forecast < 2e18) want = start < FLOOR + STEP ? FLOOR : start - STEP;
            if (next != want) ++wrongAdjustments;
        } catch {
            if (expected) ++unexpectedOutcomes;
            if (bond.couponBps() != old) ++wrongAdjustments;
        }
        _checkPaused();
    }

    /// @notice The owner tries to renounce ownership (it must always revert).
    function ownerRenounces() external {
        (bool ok,) = address(bond).call(abi.encodeCall(bond.renounceOwnership, ()));
        if (ok) ++unauthorizedChanges;
    }

    function ownerPause(uint256 choice) external {
        if (choice % 8 == 1) {
            try bond.pause() {
                pausedG = true;
                couponAtPause = bond.couponBps();
            } catch {}
        } else {
            try bond.unpause() {
                pausedG = false;
            } catch {}
        }
    }

    function strangerConfigures(uint256 which) external {
        vm.startPrank(STRANGER);
        bool changed;
        uint256 w = which % 6;
        if (w == 0) (changed,) = address(bond).call(abi.encodeCall(bond.setFeaturePublisher, (STRANGER, true)));
        else if (w == 1) (changed,) = address(bond).call(abi.encodeCall(bond.setMaxFeatureAge, (1)));
        else if (w == 2) (changed,) = address(bond).call(abi.encodeCall(bond.dropModel, (modelId)));
        else if (w == 3) (changed,) = address(bond).call(abi.encodeCall(bond.pause, ()));
        else if (w == 4) (changed,) = address(bond).call(abi.encodeCall(bond.transferOwnership, (STRANGER)));
        else (changed,) = address(registry).call(abi.encodeCall(registry.revoke, (modelId)));
        vm.stopPrank();
        if (changed) ++unauthorizedChanges;
    }

    function _checkPaused() internal {
        if (bond.paused() && bond.couponBps() != couponAtPause) ++movedWhilePaused;
    }
}

/// @title BondInvariants
/// @notice Handler-based invariants of AdaptiveCouponBond: one adjustment per period, the current one only;
///         each adjustment one clamped step; the coupon within [floor, cap]; paused, nothing moves; only the
///         owner configures. One function per property.
contract BondInvariants is StdInvariant, Test {
    BondHandler internal handler;

    function setUp() public {
        handler = new BondHandler();
        targetContract(address(handler));
    }

    /// @notice A posting acts at most once and a withdrawn one never; only the current period adjusts; every
    ///         outcome is the reference model's.
    function invariant_onePostingOneAdjustment() public view {
        assertEq(handler.doubleAdjustments(), 0, "a posting acted twice");
        assertEq(handler.voidActs(), 0, "a withdrawn posting acted");
        assertEq(handler.notCurrentPeriod(), 0, "another period adjusted the coupon");
        assertEq(handler.unexpectedOutcomes(), 0, "an outcome other than the reference model's");
    }

    /// @notice Each adjustment (a correction too) sets the coupon at most one step from the period's starting
    ///         coupon, as the rule says; it stays in [floor, cap].
    function invariant_couponStepsWithinBounds() public view {
        assertEq(handler.stepViolations(), 0, "moved more than a step");
        assertEq(handler.wrongAdjustments(), 0, "moved other than the rule says");
        assertGe(handler.bond().couponBps(), handler.FLOOR(), "below floor");
        assertLe(handler.bond().couponBps(), handler.CAP(), "above cap");
    }

    /// @notice Paused, the coupon does not move.
    function invariant_pausedMeansNothingMoves() public view {
        assertEq(handler.movedWhilePaused(), 0, "moved while paused");
        if (handler.bond().paused()) assertEq(handler.bond().couponBps(), handler.couponAtPause(), "coupon moved");
    }

    /// @notice Only the owner configures.
    function invariant_onlyOwnersChangeConfiguration() public view {
        assertEq(handler.unauthorizedChanges(), 0, "a stranger changed configuration");
        assertEq(handler.bond().owner(), address(handler), "owner");
        assertEq(handler.registry().owner(), address(handler), "registry owner");
        assertEq(handler.bond().paused(), handler.pausedG(), "paused flag");
        assertTrue(handler.bond().acceptedModel(handler.modelId()).accepted, "model still accepted");
        assertTrue(handler.registry().model(handler.modelId()).active, "model still active");
        assertEq(uint256(handler.bond().maxFeatureAge()), 6 hours, "max feature age");
    }

    /// @notice Not vacuous: posting the current period's window and submitting a valid proof adjusts the
    ///         coupon; the same posting does not act again; a re-posting re-adjusts from the period's start.
    function test_honestPathActs() public {
        handler.post(0, 1);
        handler.submit(0, 500, 0); // forecast 500/128 > 3.0: up one step
        assertEq(handler.acted(), 1, "the honest path did not act");
        assertEq(handler.bond().couponBps(), 450, "one step up");
        handler.warp(60);
        handler.submit(0, 500, 0);
        assertEq(handler.acted(), 1, "a posting acted twice");
        handler.post(0, 1);
        handler.submit(0, 500, 0);
        assertEq(handler.acted(), 2, "a re-posting did not act");
        assertEq(handler.bond().couponBps(), 450, "from the period's start, not another step");
        assertEq(handler.unexpectedOutcomes(), 0, "reference model");
    }
}

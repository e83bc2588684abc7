// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {StdInvariant, Test} from "../utils/Test.sol";
import {LendingHandler} from "./LendingHandler.sol";

/// @title LendingInvariants
/// @notice Handler-based invariants of InferenceGate + RiskAdjustedLending + ModelRegistry: forge calls
///         LendingHandler's actions (posting, time, submissions, replays, the owner's and strangers'
///         configuration calls) in random sequences, and after each call checks every property below. Each
///         property is its own function, so the runner reports which one broke. The verifier is a
///         MockVerifier bound to the instances (see its NatSpec); real proofs are the Python on-chain tests'.
contract LendingInvariants is StdInvariant, Test {
    LendingHandler internal handler;

    function setUp() public {
        handler = new LendingHandler();
        targetContract(address(handler));
    }

    /// @notice A posting acts at most once, whatever the model (replays and other models' proofs about a
    ///         consumed posting are refused), and the gate's postings are the reference model's.
    function invariant_postingActsAtMostOnce() public view {
        assertEq(handler.doubleActs(), 0, "a posting acted twice");
        assertEq(handler.keyDisagreements(), 0, "statement key");
        assertTrue(handler.postingsAgree(), "the gate's postings differ from the reference model's");
    }

    /// @notice A withdrawn posting, or one of a revoked publisher id, never acts.
    function invariant_voidPostingsNeverAct() public view {
        assertEq(handler.voidActs(), 0, "a withdrawn or revoked publisher's posting acted");
    }

    /// @notice A posting once stale never acts, however the owner raises maxFeatureAge later.
    function invariant_raisingMaxAgeNeverRevivesStale() public view {
        assertEq(handler.revivedStale(), 0, "a stale posting was revived");
    }

    /// @notice renounceOwnership always reverts, for the gate and the registry, whoever calls.
    function invariant_renounceOwnershipAlwaysReverts() public view {
        assertEq(handler.renounced(), 0, "ownership renounced");
    }

    /// @notice Nothing acts without an accepted, active model and, for every slot, a fresh posting matching
    ///         the proof's inputs (as the contracts themselves record them).
    function invariant_noActionWithoutAcceptedActiveModelAndFreshMatchingPosting() public view {
        assertEq(handler.actsWithoutPreconditions(), 0, "acted without its preconditions");
    }

    /// @notice Each update moves a borrower's rate by at most the (owner-set) breaker's step, a clamped update
    ///         exactly one step toward its target (the reference model checks the exact rate), and rates stay within
    ///         [base, base + slope] (or the initial rate before a borrower's first update).
    function invariant_rateMovesAtMostStepAndStaysInBounds() public view {
        assertEq(handler.stepViolations(), 0, "a rate moved beyond the breaker's step");
        assertEq(handler.boundViolations(), 0, "a rate left its bounds");
        for (uint256 i; i < handler.N_BORROWERS(); ++i) {
            uint256 r = handler.lending().rateOf(handler.borrower(i));
            if (r != handler.INITIAL()) {
                assertGe(r, handler.BASE(), "rate below base");
                assertLe(r, uint256(handler.BASE()) + handler.SLOPE(), "rate above base + slope");
            }
        }
    }

    /// @notice While paused, no submission acts and no rate changes.
    function invariant_pausedMeansNothingMoves() public view {
        assertEq(handler.movedWhilePaused(), 0, "something moved while paused");
        if (handler.lending().paused()) {
            for (uint256 i; i < handler.N_BORROWERS(); ++i) {
                assertEq(handler.lending().rateOf(handler.borrower(i)), handler.ratesAtPause(i), "rate moved");
            }
        }
    }

    /// @notice Only the owners change configuration (and only publishers post): owners, parameters, the
    ///         publisher set and the registry are what the owner's own calls made them.
    function invariant_onlyOwnersChangeConfiguration() public view {
        assertEq(handler.unauthorizedChanges(), 0, "a stranger changed configuration");
        assertEq(handler.lending().owner(), address(handler), "gate owner");
        assertEq(handler.registry().owner(), address(handler), "registry owner");
        assertEq(uint256(handler.lending().maxFeatureAge()), uint256(handler.maxAgeG()), "max feature age");
        assertEq(uint256(handler.lending().maxRateStepBps()), uint256(handler.stepG()), "rate step");
        assertEq(uint256(handler.lending().publisherIdOf(handler.PUBLISHER())), uint256(handler.publisherIdG()), "publisher id");
        assertEq(uint256(handler.lending().publisherIdCount()), uint256(handler.publisherIdCountG()), "publisher ids");
        assertEq(uint256(handler.lending().publisherIdOf(handler.STRANGER())), 0, "stranger's publisher id");
        assertFalse(handler.lending().isFeaturePublisher(handler.STRANGER()), "stranger became a publisher");
        assertEq(handler.registry().modelCount(), handler.modelCountG(), "model count");
        assertEq(handler.lending().paused(), handler.pausedG(), "paused flag");
        assertEq(handler.lending().guardian(), handler.GUARDIAN(), "guardian");
        assertEq(uint256(handler.lending().minPostingInterval()), uint256(handler.intervalG()), "posting interval");
        for (uint256 id = 1; id <= handler.N_MODELS(); ++id) {
            assertEq(handler.registry().model(id).active, handler.activeG(id), "model active flag");
            assertEq(handler.lending().acceptedModel(id).accepted, handler.acceptedG(id), "model accepted flag");
            assertEq(handler.lending().isModelSuspended(id), handler.suspendedG(id), "model suspended flag");
        }
    }

    /// @notice Every submission's outcome is the reference model's (acted exactly when all rules allow it, to
    ///         the rates the rule gives), and a refused submission changes nothing.
    function invariant_outcomesMatchTheReferenceModel() public view {
        assertEq(handler.unexpectedSuccesses(), 0, "acted where the rules forbid it");
        assertEq(handler.unexpectedFailures(), 0, "refused where the rules allow it");
        assertEq(handler.rateDisagreements(), 0, "a rate other than the rule's");
        assertEq(handler.changedOnFailure(), 0, "a refused submission changed state");
    }

    /// @notice Not vacuous: the handler's honest path (post fresh features, submit a valid proof) acts, and
    ///         the same statement replayed, or proven by another accepted model, does not.
    function test_honestPathActs() public {
        handler.postThenSubmit(0, 1, 0x0102, 64, 64, 0x1000000888);
        assertEq(handler.actedSubmissions(), 1, "the honest path did not act");
        handler.replay(false);
        handler.ownerModel(1, 0); // accept model 2
        handler.replay(true);
        assertEq(handler.actedSubmissions(), 1, "a replay acted");
        assertEq(handler.unexpectedFailures() + handler.unexpectedSuccesses(), 0, "reference model disagrees");
    }
}

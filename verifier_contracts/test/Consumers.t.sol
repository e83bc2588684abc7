// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceGate} from "../src/InferenceGate.sol";
import {ModelRegistry} from "../src/ModelRegistry.sol";
import {RiskAdjustedLending} from "../src/RiskAdjustedLending.sol";
import {AdaptiveCouponBond} from "../src/AdaptiveCouponBond.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Test, Vm} from "./utils/Test.sol";
import {Felts, MockProofs, MockVerifier} from "./utils/Fixtures.sol";

/// @notice Fuzz tests of RiskAdjustedLending's rule (rate = base + slope * PD, the circuit breaker, PD and
///         subject checks). The verifier is a MockVerifier (see its NatSpec): the rule, not the proof, is tested.
contract RiskAdjustedLendingTest is Test {
    address internal constant PUBLISHER = address(0xB0B);
    ModelRegistry internal registry;
    RiskAdjustedLending internal lending;
    uint256 internal modelId;

    function setUp() public {
        vm.warp(1_700_000_000);
        registry = new ModelRegistry(address(this));
        MockVerifier verifier = new MockVerifier();
        lending = new RiskAdjustedLending(
            registry,
            address(this),
            1 hours,
            RiskAdjustedLending.RateTerms({baseRateBps: 200, slopeBps: 3000, maxRateStepBps: 500, initialRateBps: 1000})
        );
        modelId = registry.register(verifier, bytes32(uint256(1)), bytes32(uint256(1)), 7, Felts.publicLayout(1, 2), 0);
        lending.acceptModel(modelId, 0);
        lending.setFeaturePublisher(PUBLISHER, true);
    }

    /// @dev Posts `subject`'s features (x, y) and submits a proven output felt; returns whether it acted.
    function _submit(bytes32 subject, uint256 x, uint256 y, uint256 outFelt) internal returns (bool ok, bytes memory err) {
        uint256[] memory xs = new uint256[](3);
        xs[0] = x;
        xs[1] = y;
        xs[2] = outFelt;
        vm.prank(PUBLISHER);
        lending.postFeatures(subject, Felts.commitment(Felts.pair(x, y)));
        bytes32[] memory subjects = new bytes32[](1);
        subjects[0] = subject;
        try lending.submit(modelId, MockProofs.proofFor(xs), xs, subjects) {
            ok = true;
        } catch (bytes memory e) {
            err = e;
        }
        vm.warp(block.timestamp + 1); // the next posting is a new round
    }

    /// @notice The target rate is base + slope * PD, monotone, within [base, base + slope].
    function testFuzz_targetRateIsAffineAndBounded(uint256 pd1, uint256 pd2) public view {
        pd1 = bound(pd1, 0, 1e18);
        pd2 = bound(pd2, pd1, 1e18);
        uint256 r1 = lending.targetRateBps(pd1);
        assertEq(r1, 200 + pd1 * 3000 / 1e18, "affine");
        assertLe(r1, lending.targetRateBps(pd2), "monotone");
        assertGe(r1, 200, "at least base");
        assertLe(lending.targetRateBps(pd2), 3200, "at most base + slope");
    }

    /// @notice One update moves a rate toward the target by at most the (owner-set) breaker's step: to the
    ///         target when within a step, else one step toward it (RateStepLimited naming the target); a proven
    ///         PD outside [0, 1] is refused and leaves the rate.
    function testFuzz_breakerClampsTowardTarget(address borrower, int256 pdFelt, uint256 x, uint32 step, uint8 rounds)
        public
    {
        vm.assume(borrower != address(0));
        step = uint32(bound(step, 1, 4000));
        lending.setMaxRateStep(step);
        assertEq(uint256(lending.maxRateStepBps()), uint256(step), "step set");
        pdFelt = int256(bound(uint256(pdFelt), 0, 400)) - 200; // PD in [-200/128, 200/128]
        bytes32 subject = lending.subjectOf(borrower);
        rounds = uint8(bound(rounds, 1, 4));
        for (uint256 r; r < rounds; ++r) {
            uint256 before = lending.rateOf(borrower);
            vm.recordLogs();
            (bool ok, bytes memory err) = _submit(subject, x, r, Felts.encode(pdFelt));
            uint256 after_ = lending.rateOf(borrower);
            if (pdFelt < 0 || pdFelt > 128) {
                assertFalse(ok, "PD outside [0, 1] acted");
                assertEq(bytes4(err), RiskAdjustedLending.ProbabilityOutOfRange.selector, "error");
                assertEq(after_, before, "rate kept");
                return;
            }
            assertTrue(ok, "a valid update was refused");
            uint256 target = 200 + uint256(pdFelt) * 1e18 / 128 * 3000 / 1e18;
            uint256 expected = target > before + step ? before + step : before > target + step ? before - step : target;
            assertEq(after_, expected, "clamped toward the target");
            bool limited;
            Vm.Log[] memory logs = vm.getRecordedLogs();
            for (uint256 j; j < logs.length; ++j) {
                if (logs[j].topics[0] == keccak256("RateStepLimited(address,uint256)")) {
                    limited = true;
                    assertEq(abi.decode(logs[j].data, (uint256)), target, "RateStepLimited names the target");
                }
            }
            assertEq(limited, expected != target, "RateStepLimited exactly when clamped");
        }
    }

    /// @notice Only the owner sets the step, and never to zero.
    function testFuzz_setMaxRateStep(address stranger, uint32 step) public {
        vm.assume(stranger != address(this));
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        lending.setMaxRateStep(step);
        vm.expectRevert(RiskAdjustedLending.InvalidRateTerms.selector);
        lending.setMaxRateStep(0);
        vm.assume(step != 0);
        lending.setMaxRateStep(step);
        assertEq(uint256(lending.maxRateStepBps()), uint256(step), "set");
    }

    /// @notice Repeated updates walk the rate towards any target at most 500 bp at a time.
    function testFuzz_rateWalksWithinSteps(address borrower, uint8[6] memory pds) public {
        vm.assume(borrower != address(0));
        for (uint256 i; i < pds.length; ++i) {
            uint256 before = lending.rateOf(borrower);
            _submit(lending.subjectOf(borrower), i, 0, bound(pds[i], 0, 128));
            uint256 after_ = lending.rateOf(borrower);
            uint256 moved = after_ > before ? after_ - before : before - after_;
            assertLe(moved, 500, "moved beyond the breaker");
            assertGe(after_, 200, "below base");
            assertLe(after_, 3200, "above base + slope");
        }
    }

    /// @notice A subject that is not an address is refused.
    function testFuzz_nonAddressSubjectsRefused(bytes32 subject) public {
        vm.assume(uint256(subject) >> 160 != 0 || subject == 0);
        (bool ok, bytes memory err) = _submit(subject, 1, 2, 64);
        assertFalse(ok, "acted on a non-address subject");
        assertEq(bytes4(err), RiskAdjustedLending.InvalidBorrowerSubject.selector, "error");
    }

    /// @notice Inconsistent terms are refused at deployment.
    function testFuzz_termsValidated(uint32 base, uint32 slope, uint32 step, uint32 initial) public {
        bool ok = step != 0 && uint256(base) + slope <= 10_000 && initial <= 10_000;
        RiskAdjustedLending.RateTerms memory t = RiskAdjustedLending.RateTerms(base, slope, step, initial);
        try new RiskAdjustedLending(registry, address(this), 1, t) {
            assertTrue(ok, "inconsistent terms accepted");
        } catch {
            assertFalse(ok, "consistent terms refused");
        }
    }
}

/// @notice Fuzz tests of AdaptiveCouponBond's rule (one step per period towards the forecast, within [floor,
///         cap], current period only). The verifier is a MockVerifier (see its NatSpec).
contract AdaptiveCouponBondTest is Test {
    address internal constant PUBLISHER = address(0xB0B);
    uint64 internal constant START = 1_700_000_000;
    uint64 internal constant PERIOD = 30 days;
    ModelRegistry internal registry;
    AdaptiveCouponBond internal bond;
    uint256 internal modelId;

    function setUp() public {
        vm.warp(START);
        registry = new ModelRegistry(address(this));
        MockVerifier verifier = new MockVerifier();
        bond = new AdaptiveCouponBond(
            registry,
            address(this),
            1 days,
            AdaptiveCouponBond.CouponTerms({
                initialCouponBps: 400,
                floorBps: 100,
                capBps: 800,
                stepBps: 50,
                raiseAbove: 3e18,
                cutBelow: 2e18,
                startTime: START,
                periodLength: PERIOD
            })
        );
        modelId = registry.register(verifier, bytes32(uint256(1)), bytes32(uint256(1)), 7, Felts.publicLayout(1, 3), 0);
        bond.acceptModel(modelId, 0);
        bond.setFeaturePublisher(PUBLISHER, true);
    }

    function _submit(uint256 period, uint256 window, int256 forecastFelt) internal returns (bool ok, bytes memory err) {
        uint256[] memory xs = new uint256[](4);
        xs[0] = window;
        xs[1] = window + 1;
        xs[2] = window + 2;
        xs[3] = Felts.encode(forecastFelt);
        uint256[] memory inputs = new uint256[](3);
        inputs[0] = xs[0];
        inputs[1] = xs[1];
        inputs[2] = xs[2];
        bytes32 subject = bond.periodSubject(period);
        vm.prank(PUBLISHER);
        bond.postFeatures(subject, Felts.commitment(inputs));
        bytes32[] memory subjects = new bytes32[](1);
        subjects[0] = subject;
        try bond.submit(modelId, MockProofs.proofFor(xs), xs, subjects) {
            ok = true;
        } catch (bytes memory e) {
            err = e;
        }
    }

    /// @notice A forecast above raiseAbove steps up, below cutBelow steps down, else holds -- clamped to
    ///         [floor, cap]; a posting acts once; a corrected window (a new posting) re-adjusts from the
    ///         period's starting coupon, never more than one step from it.
    function testFuzz_oneClampedStepPerPeriod(int128 forecastFelt, int128 correctedFelt, uint256 window, uint8 periods)
        public
    {
        periods = uint8(bound(periods, 1, 20));
        window = bound(window, 0, type(uint256).max - 3);
        vm.assume(forecastFelt != type(int128).min && correctedFelt != type(int128).min); // see the next test
        int256 f = int256(forecastFelt);
        int256 g = int256(correctedFelt);
        for (uint256 p; p < periods; ++p) {
            uint256 start = bond.couponBps();
            (bool ok,) = _submit(p, window, f);
            assertTrue(ok, "the current period's first adjustment was refused");
            assertEq(bond.couponBps(), _stepped(start, f), "one clamped step");
            assertTrue(bond.isPeriodAdjusted(p), "period marked");
            (bool again, bytes memory err) = _resubmit(p, window, f);
            assertFalse(again, "a posting acted twice");
            assertEq(bytes4(err), InferenceGate.PostingAlreadyConsumed.selector, "error");
            assertEq(bond.couponBps(), _stepped(start, f), "unchanged");
            vm.warp(block.timestamp + 1);
            (bool corrected,) = _submit(p, window + 1, g); // a corrected window: from the starting coupon
            assertTrue(corrected, "a correction was refused");
            assertEq(bond.couponBps(), _stepped(start, g), "re-adjusted from the period's start");
            vm.warp(START + (p + 1) * PERIOD);
        }
    }

    function _stepped(uint256 start, int256 felt) internal pure returns (uint256) {
        int256 forecast = felt * 1e18 / 128;
        if (forecast > 3e18) return start + 50 > 800 ? 800 : start + 50;
        if (forecast < 2e18) return start < 150 ? 100 : start - 50;
        return start;
    }

    /// @dev Submits again without a new posting.
    function _resubmit(uint256 period, uint256 window, int256 forecastFelt) internal returns (bool ok, bytes memory err) {
        uint256[] memory xs = new uint256[](4);
        xs[0] = window;
        xs[1] = window + 1;
        xs[2] = window + 2;
        xs[3] = Felts.encode(forecastFelt);
        bytes32[] memory subjects = new bytes32[](1);
        subjects[0] = bond.periodSubject(period);
        try bond.submit(modelId, MockProofs.proofFor(xs), xs, subjects) {
            ok = true;
        } catch (bytes memory e) {
            err = e;
        }
    }

    /// @notice Outputs whose magnitude exceeds int128 (not fixed-point values: e.g. a hash) are refused.
    function testFuzz_outputsBeyondInt128Refused(uint256 magnitude, bool negative) public {
        magnitude = bound(magnitude, uint256(uint128(type(int128).max)) + 1, (Felts.P - 1) / 2);
        (bool ok, bytes memory err) = _submit(0, 1, negative ? -int256(magnitude) : int256(magnitude));
        assertFalse(ok, "an out-of-range output acted");
        assertEq(bytes4(err), bytes4(keccak256("FeltOutOfRange(uint256)")), "error");
        assertEq(bond.couponBps(), 400, "coupon kept");
    }

    /// @notice Only the current period's subject acts.
    function testFuzz_onlyTheCurrentPeriod(uint256 period, uint256 elapsed) public {
        elapsed = bound(elapsed, 0, 1000 * uint256(PERIOD));
        vm.warp(START + elapsed);
        uint256 current = elapsed / PERIOD;
        vm.assume(period != current);
        (bool ok, bytes memory err) = _submit(period, 1, 1000);
        assertFalse(ok, "another period acted");
        assertEq(bytes4(err), AdaptiveCouponBond.NotCurrentPeriod.selector, "error");
        assertEq(bond.couponBps(), 400, "coupon kept");
    }

    /// @notice Inconsistent terms are refused at deployment.
    function testFuzz_termsValidated(uint32 initial, uint32 floor, uint32 cap, uint32 step, int256 raise, int256 cut, uint64 len)
        public
    {
        bool ok = floor <= cap && cap <= 10_000 && initial >= floor && initial <= cap && step != 0 && cut <= raise && len != 0;
        AdaptiveCouponBond.CouponTerms memory t = AdaptiveCouponBond.CouponTerms(initial, floor, cap, step, raise, cut, 0, len);
        try new AdaptiveCouponBond(registry, address(this), 1, t) {
            assertTrue(ok, "inconsistent terms accepted");
        } catch {
            assertFalse(ok, "consistent terms refused");
        }
    }
}

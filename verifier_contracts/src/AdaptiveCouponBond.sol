// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceGate} from "./InferenceGate.sol";
import {ModelRegistry} from "./ModelRegistry.sol";
import {InstanceLayout} from "./lib/InstanceLayout.sol";

/// @title AdaptiveCouponBond
/// @notice A bond whose coupon follows a proven inflation forecast (e.g. zkinfer's `inflation_forecast`):
///         once per period, the coupon steps up by `stepBps` when the forecast is above `raiseAbove`, down by
///         `stepBps` when it is below `cutBelow`, and stays otherwise, always within [floorBps, capBps].
///         The subject is the period (see {periodSubject}): the feature publisher posts the period's
///         published inflation window, and only a proof about the current period's window moves the coupon.
///         Corrections: every posting of a period's window sets the period's coupon from the coupon the period
///         started with, so a corrected window (a new posting) replaces an adjustment made from the wrong one,
///         however early someone acted on it; re-posting the same window changes nothing. A window found
///         wrong before anyone acted on it can also be withdrawn ({InferenceGate-withdrawFeatures}).
///         The step is a term of the bond, fixed for its life (no owner may change holders' terms); it never
///         reverts: a move is clamped to [floorBps, capBps].
contract AdaptiveCouponBond is InferenceGate {
    /// @notice The bond's coupon terms.
    struct CouponTerms {
        uint32 initialCouponBps;
        uint32 floorBps;
        uint32 capBps;
        uint32 stepBps; // move of one adjustment
        int256 raiseAbove; // forecast above this raises the coupon (OUTPUT_DECIMALS decimals, model units)
        int256 cutBelow; // forecast below this cuts the coupon
        uint64 startTime; // period 0 starts here
        uint64 periodLength; // seconds
    }

    /// @notice Lowest coupon, bp.
    uint32 public immutable floorBps;
    /// @notice Highest coupon, bp.
    uint32 public immutable capBps;
    /// @notice Move of one adjustment, bp.
    uint32 public immutable stepBps;
    /// @notice A forecast above this raises the coupon (OUTPUT_DECIMALS decimals, in the model's units).
    int256 public immutable raiseAbove;
    /// @notice A forecast below this cuts the coupon.
    int256 public immutable cutBelow;
    /// @notice When period 0 starts.
    uint64 public immutable startTime;
    /// @notice Length of a period, seconds.
    uint64 public immutable periodLength;

    /// @notice Basis points in 100%: the highest cap.
    uint32 public constant BPS = 10_000;

    /// @notice The current coupon, bp.
    uint32 public couponBps;
    // A period's subject state (see {InferenceGate-_act}) once its coupon was adjusted: ADJUSTED with the coupon
    // the period started with (at most capBps <= BPS < ADJUSTED), which every later posting of the period's
    // window adjusts from again.
    uint16 private constant ADJUSTED = uint16(1) << 15;

    /// @notice The coupon was adjusted for a period (possibly to the same value, when the forecast sits between
    ///         the thresholds or the coupon is at its floor or cap): newCouponBps is the period's starting coupon
    ///         moved by the forecast; oldCouponBps the coupon just before (another window's adjustment, when
    ///         this one corrects it).
    event CouponAdjusted(
        uint256 indexed period, uint256 indexed modelId, uint256 oldCouponBps, uint256 newCouponBps, int256 forecast
    );

    /// @notice The terms are inconsistent (floor above cap, cap above 100%, initial coupon outside them, no
    ///         step, thresholds crossed, zero period).
    error InvalidCouponTerms();
    /// @notice The bond's first period has not started.
    error BondNotStarted(uint64 startTime);
    /// @notice The bond acts on one inference per period; the model proves several.
    error UnsupportedSlotCount(uint16 slots);
    /// @notice The proof's subject is not the current period.
    error NotCurrentPeriod(bytes32 currentPeriodSubject, bytes32 subject);

    /// @param registry_ The model registry.
    /// @param initialOwner The gate's owner.
    /// @param maxFeatureAge_ How old posted features may be, seconds.
    /// @param terms The coupon terms.
    constructor(ModelRegistry registry_, address initialOwner, uint32 maxFeatureAge_, CouponTerms memory terms)
        InferenceGate(registry_, initialOwner, maxFeatureAge_)
    {
        if (
            terms.floorBps > terms.capBps || terms.capBps > BPS || terms.initialCouponBps < terms.floorBps
                || terms.initialCouponBps > terms.capBps || terms.stepBps == 0 || terms.cutBelow > terms.raiseAbove
                || terms.periodLength == 0
        ) revert InvalidCouponTerms();
        couponBps = terms.initialCouponBps;
        floorBps = terms.floorBps;
        capBps = terms.capBps;
        stepBps = terms.stepBps;
        raiseAbove = terms.raiseAbove;
        cutBelow = terms.cutBelow;
        startTime = terms.startTime;
        periodLength = terms.periodLength;
    }

    /// @notice The period now.
    /// @return The period's index (0 from startTime on).
    function currentPeriod() public view returns (uint256) {
        if (block.timestamp < startTime) revert BondNotStarted(startTime);
        return (block.timestamp - startTime) / periodLength;
    }

    /// @notice The subject a period's inflation window is posted and proven under.
    /// @param period The period's index.
    /// @return The period's index as bytes32.
    function periodSubject(uint256 period) public pure returns (bytes32) {
        return bytes32(period);
    }

    /// @notice Whether a period's coupon was already adjusted.
    /// @param period The period.
    /// @return True once a proven forecast adjusted the coupon in that period.
    function isPeriodAdjusted(uint256 period) external view returns (bool) {
        return _subjectState(periodSubject(period)) & ADJUSTED != 0;
    }

    function _checkLayout(InstanceLayout memory instanceLayout) internal pure override {
        if (instanceLayout.slots != 1) revert UnsupportedSlotCount(instanceLayout.slots);
    }

    function _validateSubjects(bytes32[] calldata subjects) internal view override {
        bytes32 current = periodSubject(currentPeriod());
        if (subjects[0] != current) revert NotCurrentPeriod(current, subjects[0]);
    }

    function _act(uint256 modelId, bytes32 subject, int256 forecast, uint16 state, uint256)
        internal
        override
        returns (uint16)
    {
        uint256 period = uint256(subject);
        // The period's starting coupon: what the first adjustment found, kept for the corrections after it.
        uint256 start = state & ADJUSTED != 0 ? state & ~ADJUSTED : couponBps;
        uint256 next = start;
        if (forecast > raiseAbove) {
            next = start + stepBps > capBps ? capBps : start + stepBps;
        } else if (forecast < cutBelow) {
            next = start < uint256(floorBps) + stepBps ? floorBps : start - stepBps;
        }
        uint256 old = couponBps;
        // floorBps <= next <= capBps: fits in uint32.
        couponBps = uint32(next);
        emit CouponAdjusted(period, modelId, old, next, forecast);
        // start <= capBps <= BPS < ADJUSTED (checked in the constructor).
        return ADJUSTED | uint16(start);
    }
}

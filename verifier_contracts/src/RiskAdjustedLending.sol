// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceGate} from "./InferenceGate.sol";
import {ModelRegistry} from "./ModelRegistry.sol";

/// @title RiskAdjustedLending
/// @notice Borrowers' interest rates set from a proven probability of default (PD), e.g. zkinfer's
///         `credit_risk` or `credit_gbt` models: rate = baseRate + slope * PD, in basis points.
///         A subject is a borrower (see {subjectOf}); the feature publisher posts each borrower's features
///         and anyone may submit the proof that moves the rate (see {InferenceGate} for the checks).
///         Circuit breaker: one update moves a rate by at most `maxRateStepBps` toward its target: a borrower
///         whose risk jumps moves one step per posting (each review round), with RateStepLimited naming the
///         target, and never holds up the other borrowers of its batch. The owner sets the step
///         ({setMaxRateStep}).
contract RiskAdjustedLending is InferenceGate {
    /// @notice Rate parameters, basis points.
    struct RateTerms {
        uint32 baseRateBps; // rate at PD = 0
        uint32 slopeBps; // added at PD = 1
        uint32 maxRateStepBps; // largest move of one update
        uint32 initialRateBps; // rate of a borrower never updated
    }

    /// @notice A PD of 1 (certain default), with the gate's OUTPUT_DECIMALS.
    int256 public constant PD_ONE = 1e18; // 10 ** OUTPUT_DECIMALS, a literal so no EXP runs per borrower
    /// @notice Basis points in 100%.
    uint32 public constant BPS = 10_000;

    /// @notice Rate at PD = 0, bp.
    uint32 public immutable baseRateBps;
    /// @notice Rate added at PD = 1, bp.
    uint32 public immutable slopeBps;
    /// @notice Rate of a borrower never updated, bp.
    uint32 public immutable initialRateBps;
    /// @notice Largest move of one update, bp (the owner sets it: {setMaxRateStep}).
    uint32 public maxRateStepBps;

    // A borrower's rate is the gate's per-subject state (see {InferenceGate-_act}), so that acting on a
    // borrower touches one storage slot: the rate in bp, with RATED set once a proof has set it (until then
    // the initial rate applies). Rates are at most BPS < RATED.
    uint16 private constant RATED = uint16(1) << 15;

    /// @notice A borrower's rate was set from a proven PD.
    /// @dev Lean on purpose: one proof may move 64 borrowers' rates, and every 32 bytes of event data costs each
    ///      of them 256 gas. The model version is in the same transaction's StatementConsumed event, the proven
    ///      PD in its calldata (the proof's output instance for the borrower's slot), and the previous rate in
    ///      the borrower's previous RateUpdated (or it was `initialRateBps`).
    event RateUpdated(address indexed borrower, uint256 newRateBps);
    /// @notice The circuit breaker held a borrower's update to one step short of the proven PD's rate (emitted
    ///         only then, before the borrower's RateUpdated).
    event RateStepLimited(address indexed borrower, uint256 targetRateBps);
    /// @notice The circuit breaker's step changed.
    event MaxRateStepSet(uint32 maxRateStepBps);

    /// @notice The terms are inconsistent: no step allowed, or a maximum or initial rate above 100%.
    error InvalidRateTerms();
    /// @notice The subject is not an address (see {subjectOf}).
    error InvalidBorrowerSubject(bytes32 subject);
    /// @notice The proven PD is outside [0, 1].
    error ProbabilityOutOfRange(address borrower, int256 probabilityOfDefault);

    /// @param registry_ The model registry.
    /// @param initialOwner The gate's owner.
    /// @param maxFeatureAge_ How old posted features may be, seconds.
    /// @param terms The rate terms.
    constructor(ModelRegistry registry_, address initialOwner, uint32 maxFeatureAge_, RateTerms memory terms)
        InferenceGate(registry_, initialOwner, maxFeatureAge_)
    {
        if (uint256(terms.baseRateBps) + terms.slopeBps > BPS || terms.initialRateBps > BPS) revert InvalidRateTerms();
        baseRateBps = terms.baseRateBps;
        slopeBps = terms.slopeBps;
        initialRateBps = terms.initialRateBps;
        _setMaxRateStep(terms.maxRateStepBps);
    }

    /// @notice Sets the circuit breaker's step: how far one update may move a rate toward its target.
    /// @param maxRateStepBps_ Basis points, at least 1.
    function setMaxRateStep(uint32 maxRateStepBps_) external onlyOwner {
        _setMaxRateStep(maxRateStepBps_);
    }

    /// @notice The subject a borrower is posted and proven under.
    /// @param borrower The borrower.
    /// @return The borrower's address, left-padded to 32 bytes.
    function subjectOf(address borrower) public pure returns (bytes32) {
        return bytes32(uint256(uint160(borrower)));
    }

    /// @notice A borrower's current rate.
    /// @param borrower The borrower.
    /// @return The rate, bp (the initial rate until the first update).
    function rateOf(address borrower) public view returns (uint256) {
        return _rateOf(_subjectState(subjectOf(borrower)));
    }

    /// @notice The rate a PD maps to.
    /// @param probabilityOfDefault PD with OUTPUT_DECIMALS decimals, at most PD_ONE.
    /// @return The rate, bp (rounded down).
    function targetRateBps(uint256 probabilityOfDefault) public view returns (uint256) {
        return baseRateBps + (probabilityOfDefault * slopeBps) / uint256(PD_ONE);
    }

    /// @dev The submission's context is the circuit breaker's step (one storage read per submission).
    function _actContext() internal view override returns (uint256) {
        return maxRateStepBps;
    }

    function _act(uint256, bytes32 subject, int256 pd, uint16 state, uint256 step) internal override returns (uint16) {
        // Checked here rather than before the proof: a revert undoes the submission either way, and one pass
        // over the subjects is cheaper than two.
        if (uint256(subject) >> 160 != 0 || subject == bytes32(0)) revert InvalidBorrowerSubject(subject);
        address borrower = address(uint160(uint256(subject)));
        if (pd < 0 || pd > PD_ONE) revert ProbabilityOutOfRange(borrower, pd);
        uint256 current = _rateOf(state);
        uint256 target = targetRateBps(uint256(pd));
        uint256 next = target;
        if (target > current + step) {
            next = current + step;
        } else if (current > target + step) {
            next = current - step;
        }
        if (next != target) emit RateStepLimited(borrower, target);
        emit RateUpdated(borrower, next);
        // next lies between current and target, both <= BPS < RATED (checked in the constructor).
        return RATED | uint16(next);
    }

    function _rateOf(uint16 state) private view returns (uint256) {
        return state & RATED != 0 ? state & ~RATED : initialRateBps;
    }

    function _setMaxRateStep(uint32 maxRateStepBps_) private {
        if (maxRateStepBps_ == 0) revert InvalidRateTerms();
        maxRateStepBps = maxRateStepBps_;
        emit MaxRateStepSet(maxRateStepBps_);
    }
}

// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InferenceGate} from "./InferenceGate.sol";
import {ModelRegistry} from "./ModelRegistry.sol";

/// @title RiskAdjustedLending
/// @notice Borrowers' interest rates set from a proven probability of default (PD), e.g. zkinfer's
///         `credit_risk` or `credit_gbt` models: rate = baseRate + slope * PD, in basis points.
///         A subject is a borrower (see {subjectOf}); the feature publisher posts each borrower's features
///         and anyone may submit the proof that moves the rate (see {InferenceGate} for the checks).
///         Circuit breaker: one update moves a rate by at most `maxRateStepBps`; a larger move reverts with
///         RateStepTooLarge and needs the owner's attention (e.g. raise the limit, or pause).
contract RiskAdjustedLending is InferenceGate {
    /// @notice Rate parameters, basis points.
    struct RateTerms {
        uint32 baseRateBps; // rate at PD = 0
        uint32 slopeBps; // added at PD = 1
        uint32 maxRateStepBps; // largest move of one update
        uint32 initialRateBps; // rate of a borrower never updated
    }

    struct BorrowerRate {
        uint32 rateBps;
        bool rated; // false: rateBps is not set, the initial rate applies
    }

    /// @notice A PD of 1 (certain default), with the gate's OUTPUT_DECIMALS.
    int256 public constant PD_ONE = int256(10 ** OUTPUT_DECIMALS);
    /// @notice Basis points in 100%.
    uint32 public constant BPS = 10_000;

    /// @notice Rate at PD = 0, bp.
    uint32 public immutable baseRateBps;
    /// @notice Rate added at PD = 1, bp.
    uint32 public immutable slopeBps;
    /// @notice Largest move of one update, bp.
    uint32 public immutable maxRateStepBps;
    /// @notice Rate of a borrower never updated, bp.
    uint32 public immutable initialRateBps;

    mapping(address borrower => BorrowerRate) private _rates;

    /// @notice A borrower's rate was set from a proven PD.
    event RateUpdated(
        address indexed borrower,
        uint256 indexed modelId,
        uint256 oldRateBps,
        uint256 newRateBps,
        int256 probabilityOfDefault
    );

    /// @notice The terms are inconsistent: no step allowed, or a maximum or initial rate above 100%.
    error InvalidRateTerms();
    /// @notice The subject is not an address (see {subjectOf}).
    error InvalidBorrowerSubject(bytes32 subject);
    /// @notice The proven PD is outside [0, 1].
    error ProbabilityOutOfRange(address borrower, int256 probabilityOfDefault);
    /// @notice The update would move the rate by more than the circuit breaker allows.
    error RateStepTooLarge(address borrower, uint256 currentRateBps, uint256 proposedRateBps, uint256 maxRateStepBps);

    /// @param registry_ The model registry.
    /// @param initialOwner The gate's owner.
    /// @param maxFeatureAge_ How old posted features may be, seconds.
    /// @param terms The rate terms.
    constructor(ModelRegistry registry_, address initialOwner, uint64 maxFeatureAge_, RateTerms memory terms)
        InferenceGate(registry_, initialOwner, maxFeatureAge_)
    {
        if (
            terms.maxRateStepBps == 0 || uint256(terms.baseRateBps) + terms.slopeBps > BPS
                || terms.initialRateBps > BPS
        ) revert InvalidRateTerms();
        baseRateBps = terms.baseRateBps;
        slopeBps = terms.slopeBps;
        maxRateStepBps = terms.maxRateStepBps;
        initialRateBps = terms.initialRateBps;
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
        BorrowerRate memory r = _rates[borrower];
        return r.rated ? r.rateBps : initialRateBps;
    }

    /// @notice The rate a PD maps to.
    /// @param probabilityOfDefault PD with OUTPUT_DECIMALS decimals, at most PD_ONE.
    /// @return The rate, bp (rounded down).
    function targetRateBps(uint256 probabilityOfDefault) public view returns (uint256) {
        return baseRateBps + (probabilityOfDefault * slopeBps) / uint256(PD_ONE);
    }

    function _validateSubjects(bytes32[] calldata subjects) internal pure override {
        for (uint256 i; i < subjects.length; ++i) {
            if (uint256(subjects[i]) >> 160 != 0 || subjects[i] == bytes32(0)) {
                revert InvalidBorrowerSubject(subjects[i]);
            }
        }
    }

    function _act(uint256 modelId, bytes32[] calldata subjects, int256[] memory outputs) internal override {
        for (uint256 slot; slot < subjects.length; ++slot) {
            address borrower = address(uint160(uint256(subjects[slot])));
            int256 pd = outputs[slot];
            if (pd < 0 || pd > PD_ONE) revert ProbabilityOutOfRange(borrower, pd);
            uint256 current = rateOf(borrower);
            uint256 proposed = targetRateBps(uint256(pd));
            uint256 step = proposed > current ? proposed - current : current - proposed;
            if (step > maxRateStepBps) revert RateStepTooLarge(borrower, current, proposed, maxRateStepBps);
            // proposed <= baseRateBps + slopeBps <= BPS, checked in the constructor: fits in uint32.
            _rates[borrower] = BorrowerRate({rateBps: uint32(proposed), rated: true});
            emit RateUpdated(borrower, modelId, current, proposed, pd);
        }
    }
}

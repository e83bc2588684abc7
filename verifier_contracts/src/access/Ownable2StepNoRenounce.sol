// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";

/// @title Ownable2StepNoRenounce
/// @notice OpenZeppelin's two-step ownership, without renouncing. Every owned contract of the project needs an
///         owner to stay safe: a gate's owner unpauses it and drops models, the registry's owner revokes broken
///         versions. Renouncing would freeze a contract as it is (a paused gate paused for good, a broken model
///         never revoked). Ownership still moves, in two steps, to an account that accepts it.
abstract contract Ownable2StepNoRenounce is Ownable2Step {
    /// @notice Ownership cannot be renounced here: transfer it instead.
    error OwnershipCannotBeRenounced();

    /// @notice Always reverts with OwnershipCannotBeRenounced, whoever calls.
    function renounceOwnership() public pure override {
        revert OwnershipCannotBeRenounced();
    }
}

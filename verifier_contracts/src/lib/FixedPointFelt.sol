// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title FixedPointFelt
/// @notice Decodes ezkl's fixed-point public values. ezkl stores a real number x at scale s as the field
///         element round(x * 2^s), a negative one as FIELD_MODULUS - |round(x * 2^s)|.
library FixedPointFelt {
    /// @notice The BN254 scalar field's modulus: every instance of a Halo2/KZG proof is below it.
    uint256 internal constant FIELD_MODULUS =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice Field elements above this encode negative numbers.
    uint256 internal constant MAX_POSITIVE_FELT = (FIELD_MODULUS - 1) / 2;
    /// @notice The largest magnitude decoded. ezkl's own fixed-point arithmetic stays within int128; anything
    ///         larger is not a fixed-point value (e.g. a hash) and is refused rather than overflowing.
    uint256 internal constant MAX_MAGNITUDE = uint256(uint128(type(int128).max));
    /// @notice The largest fixed-point scale (bits after the binary point) decoded.
    uint8 internal constant MAX_SCALE = 64;
    /// @notice The most decimals a decoded value may carry: 10^38 * 2^127 still fits in int256.
    uint8 internal constant MAX_DECIMALS = 38;

    /// @notice The field element is not a fixed-point value within range.
    error FeltOutOfRange(uint256 felt);
    /// @notice The scale or decimals are beyond what this library decodes exactly.
    error UnsupportedFixedPoint(uint8 scale, uint8 decimals);

    /// @notice The signed integer a field element encodes.
    /// @param felt A field element (an instance).
    /// @return The integer: felt itself, or -(FIELD_MODULUS - felt) above MAX_POSITIVE_FELT.
    function toInt(uint256 felt) internal pure returns (int256) {
        if (felt >= FIELD_MODULUS) revert FeltOutOfRange(felt);
        uint256 magnitude = felt <= MAX_POSITIVE_FELT ? felt : FIELD_MODULUS - felt;
        if (magnitude > MAX_MAGNITUDE) revert FeltOutOfRange(felt);
        return felt <= MAX_POSITIVE_FELT ? int256(magnitude) : -int256(magnitude);
    }

    /// @notice Decodes field elements at one fixed-point scale into integers with a number of decimals; the
    ///         constants are worked out once, for loops over many outputs.
    struct Decoder {
        int256 unit; // 10^decimals
        int256 denominator; // 2^scale
    }

    /// @notice A decoder from `scale` (bits after the binary point) to `decimals`.
    /// @param scale The fixed-point scale.
    /// @param decimals The decimals of the results.
    /// @return The decoder.
    function decoder(uint8 scale, uint8 decimals) internal pure returns (Decoder memory) {
        if (scale > MAX_SCALE || decimals > MAX_DECIMALS) revert UnsupportedFixedPoint(scale, decimals);
        return Decoder({unit: int256(10 ** decimals), denominator: int256(1 << scale)});
    }

    /// @notice The real number a field element encodes at the decoder's scale, as an integer with its decimals.
    /// @dev Truncates toward zero. Exact whenever scale <= decimals, since 2^scale then divides 10^decimals.
    /// @param d The decoder.
    /// @param felt A field element (an instance).
    /// @return The value times 10^decimals.
    function decode(Decoder memory d, uint256 felt) internal pure returns (int256) {
        // |toInt(felt)| <= 2^127 and unit <= 10^38: the product fits in int256 (see MAX_DECIMALS).
        unchecked {
            return (toInt(felt) * d.unit) / d.denominator;
        }
    }
}

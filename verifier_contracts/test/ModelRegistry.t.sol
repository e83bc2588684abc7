// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

import {ModelRegistry} from "../src/ModelRegistry.sol";
import {IHalo2Verifier} from "../src/interfaces/IHalo2Verifier.sol";
import {InstanceLayout} from "../src/lib/InstanceLayout.sol";
import {Test} from "./utils/Test.sol";
import {MockVerifier} from "./utils/Fixtures.sol";

/// @notice Fuzz tests of ModelRegistry: which registrations are valid, append-only ids, revocation, ownership.
///         The verifier is a MockVerifier (only its having code matters to the registry).
contract ModelRegistryTest is Test {
    ModelRegistry internal registry;
    IHalo2Verifier internal verifier;

    function setUp() public {
        registry = new ModelRegistry(address(this));
        verifier = new MockVerifier();
    }

    function _valid(InstanceLayout memory l, uint8 scale, bytes32 wc) internal pure returns (bool) {
        if (scale > 64) return false;
        if (l.slots == 0 || l.outputsPerSlot == 0) return false;
        if (l.hashedInputs == (l.inputsPerSlot != 0)) return false;
        if ((l.paramHashes != 0) != (wc != bytes32(0))) return false;
        return true;
    }

    /// @notice A registration succeeds exactly when its layout, scale and weight commitment are consistent, and
    ///         then gets the next id, stored as given and active.
    function testFuzz_registerAcceptsExactlyConsistentVersions(
        InstanceLayout memory l,
        uint8 scale,
        bytes32 vkHash,
        bytes32 manifestHash, // the circuit id
        bytes32 wc
    ) public {
        vm.assume(vkHash != 0 && manifestHash != 0);
        bool ok = _valid(l, scale, wc);
        uint256 before = registry.modelCount();
        try registry.register(verifier, vkHash, manifestHash, scale, l, wc) returns (uint256 id) {
            assertTrue(ok, "an inconsistent version was registered");
            assertEq(id, before + 1, "ids run 1, 2, ...");
            ModelRegistry.Model memory m = registry.activeModel(id);
            assertEq(address(m.verifier), address(verifier), "verifier");
            assertTrue(m.active, "new versions are active");
            assertEq(m.vkHash, vkHash, "vk hash");
            assertEq(m.circuitId, manifestHash, "circuit id");
            assertEq(m.weightCommitment, wc, "weight commitment");
            assertEq(uint256(m.outputScale), uint256(scale), "scale");
            assertEq(uint256(m.instanceLayout.slots), uint256(l.slots), "slots");
        } catch {
            assertFalse(ok, "a consistent version was refused");
            assertEq(registry.modelCount(), before, "a refused registration changed the count");
        }
    }

    /// @notice Missing hashes and code-less verifiers are refused.
    function testFuzz_registerRefusesMissingHashesAndNonContracts(address eoa, bytes32 h) public {
        vm.assume(eoa.code.length == 0 && h != 0);
        InstanceLayout memory l =
            InstanceLayout({slots: 1, hashedInputs: false, inputsPerSlot: 2, outputsPerSlot: 1, paramHashes: 0});
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.VerifierNotContract.selector, eoa));
        registry.register(IHalo2Verifier(eoa), h, h, 0, l, 0);
        vm.expectRevert(ModelRegistry.MissingHash.selector);
        registry.register(verifier, 0, h, 0, l, 0);
        vm.expectRevert(ModelRegistry.MissingHash.selector);
        registry.register(verifier, h, 0, 0, l, 0);
    }

    /// @notice Only the owner registers, revokes or hands over ownership.
    function testFuzz_onlyOwnerConfigures(address stranger) public {
        vm.assume(stranger != address(this));
        InstanceLayout memory l =
            InstanceLayout({slots: 1, hashedInputs: false, inputsPerSlot: 2, outputsPerSlot: 1, paramHashes: 0});
        uint256 id = registry.register(verifier, bytes32(uint256(1)), bytes32(uint256(2)), 0, l, 0);
        bytes memory denied = abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger);
        vm.prank(stranger);
        vm.expectRevert(denied);
        registry.register(verifier, bytes32(uint256(1)), bytes32(uint256(2)), 0, l, 0);
        vm.prank(stranger);
        vm.expectRevert(denied);
        registry.revoke(id);
        vm.prank(stranger);
        vm.expectRevert(denied);
        registry.transferOwnership(stranger);
        assertTrue(registry.activeModel(id).active, "still active");
        assertEq(registry.owner(), address(this), "owner unchanged");
        assertEq(registry.modelCount(), 1, "count unchanged");
    }

    /// @notice Revocation is final and per version; unknown ids are unknown.
    function testFuzz_revokeIsFinalAndPerVersion(uint8 n, uint256 pick, uint256 unknown) public {
        n = uint8(bound(n, 1, 8));
        InstanceLayout memory l =
            InstanceLayout({slots: 1, hashedInputs: false, inputsPerSlot: 2, outputsPerSlot: 1, paramHashes: 0});
        for (uint256 i; i < n; ++i) registry.register(verifier, bytes32(i + 1), bytes32(i + 1), 0, l, 0);
        uint256 id = bound(pick, 1, n);
        registry.revoke(id);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.RevokedModel.selector, id));
        registry.activeModel(id);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.RevokedModel.selector, id));
        registry.revoke(id);
        assertFalse(registry.model(id).active, "revoked stays revoked");
        for (uint256 j = 1; j <= n; ++j) {
            if (j != id) assertTrue(registry.activeModel(j).active, "others stay active");
        }
        vm.assume(unknown == 0 || unknown > n);
        vm.expectRevert(abi.encodeWithSelector(ModelRegistry.UnknownModel.selector, unknown));
        registry.model(unknown);
    }

    /// @notice instanceCount = input hashes + param hashes + slots * (inputs + outputs).
    function testFuzz_instanceCount(InstanceLayout memory l) public view {
        uint256 expected = (l.hashedInputs ? uint256(l.slots) : 0) + l.paramHashes
            + uint256(l.slots) * (uint256(l.inputsPerSlot) + l.outputsPerSlot);
        assertEq(registry.instanceCount(l), expected, "instance count");
    }
}

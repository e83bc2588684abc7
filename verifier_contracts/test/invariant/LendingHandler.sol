// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ModelRegistry} from "../../src/ModelRegistry.sol";
import {RiskAdjustedLending} from "../../src/RiskAdjustedLending.sol";
import {IHalo2Verifier} from "../../src/interfaces/IHalo2Verifier.sol";
import {Vm} from "../utils/Test.sol";
import {Felts, MockProofs, MockVerifier} from "../utils/Fixtures.sol";

/// @title LendingHandler
/// @notice What forge's invariant runner drives at random: the owner, the feature publisher, strangers and
///         submitters acting on a RiskAdjustedLending gate and its registry. The handler owns both contracts
///         (its owner actions are the legitimate ones) and keeps a reference model of the rules, against which
///         every submission's outcome is judged; each property is counted in its own ghost counter, which the
///         invariant test asserts to be zero. Handler functions never revert (failures are expected outcomes).
/// @dev Verifier: a MockVerifier that accepts exactly the proof bound to the instances (see its NatSpec); the
///      real ezkl verifier is exercised by the Python on-chain tests. Replays are refused per posting: the
///      reference model keeps each borrower's latest posting (consumed, withdrawn, its publisher id, whether it
///      was ever stale) and compares it with the gate's subjectRecord after every submission.
contract LendingHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint32 public constant BASE = 200;
    uint32 public constant SLOPE = 3000;
    uint32 public constant STEP = 1000;
    uint32 public constant INITIAL = 1000;
    uint8 public constant SCALE = 7; // outputs: felt / 128
    uint256 public constant N_BORROWERS = 3;
    uint256 public constant N_MODELS = 3; // 1: 2 slots public inputs; 2: same layout, not accepted at first; 3: hashed

    address public constant PUBLISHER = address(0xB0B);
    address public constant STRANGER = address(0xBAD);
    address public constant GUARDIAN = address(0x6A4D);
    uint256 internal constant PARAM_HASH = 0x5eed;

    ModelRegistry public immutable registry;
    RiskAdjustedLending public immutable lending;
    MockVerifier public immutable verifier;

    // ------------------------------------------------------------------------------- the reference model
    struct Posting {
        uint256 a; // features (public inputs) or, for the hashed model, the input hash
        uint256 b;
        uint32 postedAt; // 0: none (never posted, or withdrawn)
        bool hashed;
        uint16 publisherId; // the id it was posted under
        bool consumed; // acted on
        bool everStale; // seen stale at some moment (then stale for good, whatever the limit later)
    }

    mapping(uint256 => Posting) internal _posted; // borrower index => latest posting
    mapping(uint256 => bool) public acceptedG;
    mapping(uint256 => bool) public activeG;
    mapping(address => uint256) public rateG;
    bool public pausedG;
    uint32 public maxAgeG = 1 hours;
    uint32 public stepG = STEP;
    uint32 public intervalG; // minPostingInterval
    mapping(uint256 => bool) public suspendedG;
    uint16 public publisherIdG = 1; // PUBLISHER's current id (0: disallowed)
    uint16 public publisherIdCountG = 1;
    uint256 public modelCountG;
    uint256[N_BORROWERS] internal _ratesAtPause;

    // ------------------------------------------------------------------------------- ghost counters
    uint256 public doubleActs; // a posting acted again (whatever the model)
    uint256 public keyDisagreements; // the gate's statement key is not the documented formula
    uint256 public voidActs; // a withdrawn posting, or a revoked publisher's, acted
    uint256 public revivedStale; // a posting once stale acted (raising maxFeatureAge revived it)
    uint256 public renounced; // renounceOwnership did not revert
    uint256 public actsWithoutPreconditions; // acted without an accepted active model and fresh matching postings
    uint256 public stepViolations; // a rate moved more than the step in one update, or away from the target
    uint256 public boundViolations; // a rate left [BASE, BASE + SLOPE] (or INITIAL before its first update)
    uint256 public movedWhilePaused; // a submission acted, or a rate changed, while paused
    uint256 public unauthorizedChanges; // a non-owner changed configuration, or a non-publisher posted
    uint256 public unexpectedSuccesses; // acted where the reference model says it must not
    uint256 public unexpectedFailures; // refused where the reference model says it must act
    uint256 public changedOnFailure; // a refused submission changed a rate or consumed a statement
    uint256 public rateDisagreements; // an acted submission left a rate other than the reference model's
    bytes4 public lastUnexpectedError;

    // ------------------------------------------------------------------------------- coverage
    mapping(bytes4 => uint256) public failsBy; // refusals by error selector
    bytes4[] public failSelectors;
    uint256 public submissions;
    uint256 public actedSubmissions;
    bytes32[] public actedKeys;

    // a submission's snapshot (storage: the stack is full)
    Posting[N_BORROWERS] internal _postingsBefore;
    bytes32 internal _recordsBefore;
    uint256 internal _stepNow;

    // the last acted submission, for replays
    uint256 internal _lastModel;
    uint256[] internal _lastInstances;
    bytes32[] internal _lastSubjects;

    constructor() {
        registry = new ModelRegistry(address(this));
        verifier = new MockVerifier();
        lending = new RiskAdjustedLending(
            registry,
            address(this),
            maxAgeG,
            RiskAdjustedLending.RateTerms({baseRateBps: BASE, slopeBps: SLOPE, maxRateStepBps: STEP, initialRateBps: INITIAL})
        );
        IHalo2Verifier v = verifier;
        registry.register(v, bytes32(uint256(1)), bytes32(uint256(1)), SCALE, Felts.publicLayout(2, 2), 0);
        registry.register(v, bytes32(uint256(2)), bytes32(uint256(2)), SCALE, Felts.publicLayout(2, 2), 0);
        registry.register(v, bytes32(uint256(3)), bytes32(uint256(3)), SCALE, Felts.hashedLayout(2), keccak256(abi.encodePacked(PARAM_HASH)));
        modelCountG = 3;
        for (uint256 id = 1; id <= N_MODELS; ++id) activeG[id] = true;
        lending.acceptModel(1, 0);
        lending.acceptModel(3, 1);
        acceptedG[1] = acceptedG[3] = true;
        lending.setFeaturePublisher(PUBLISHER, true);
        lending.setGuardian(GUARDIAN);
        for (uint256 i; i < N_BORROWERS; ++i) rateG[borrower(i)] = INITIAL;
    }

    function borrower(uint256 i) public pure returns (address) {
        return address(uint160(0x1000 + i));
    }

    /// @notice Whether the gate and the reference model agree on every borrower's posting (consumed, open,
    ///         withdrawn; when and under which publisher id it was posted).
    function postingsAgree() public view returns (bool) {
        for (uint256 i; i < N_BORROWERS; ++i) {
            RiskAdjustedLending.SubjectRecord memory r = lending.subjectRecord(bytes32(uint256(uint160(borrower(i)))));
            Posting memory p = _posted[i];
            if (r.postedAt != p.postedAt) return false;
            if (p.postedAt != 0 && r.publisherId != (p.consumed ? 0 : p.publisherId)) return false;
        }
        return true;
    }

    /// @notice The gate's statement key (see InferenceGate.submit).
    function statementKey(uint256 modelId, uint256[] memory postedAts, uint256[] memory instances, bytes32[] memory subjects)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(modelId, subjects, postedAts, instances));
    }

    // ======================================================================================== actions

    /// @notice The publisher posts a borrower's features (or a stranger tries to).
    function post(uint256 who, uint256 a, uint256 b, bool hashed, bool asStranger) public {
        uint256 i = who % N_BORROWERS;
        (a, b) = (a % 4, b % 4); // few feature vectors, so proofs often match what is posted
        bytes32 commitment = hashed ? bytes32(a + 100) : Felts.commitment(Felts.pair(a, b));
        // After an action on the borrower, its next posting waits the interval (a withdrawn posting is 0 here).
        Posting memory last = _posted[i];
        bool tooSoon = last.postedAt != 0 && last.consumed && block.timestamp < uint256(last.postedAt) + intervalG;
        vm.prank(asStranger ? STRANGER : PUBLISHER);
        try lending.postFeatures(bytes32(uint256(uint160(borrower(i)))), commitment) {
            if (asStranger || publisherIdG == 0) ++unauthorizedChanges;
            if (tooSoon) ++unexpectedSuccesses;
            _posted[i] = Posting({
                a: hashed ? a + 100 : a,
                b: b,
                postedAt: uint32(block.timestamp),
                hashed: hashed,
                publisherId: publisherIdG,
                consumed: false,
                everStale: false
            });
        } catch {
            if (!asStranger && publisherIdG != 0 && !tooSoon) ++unexpectedFailures;
        }
        _checkPaused();
    }

    /// @notice The publisher posts fresh features for two borrowers, then someone submits about them (the
    ///         common, honest path; `submit` alone mostly explores refusals).
    function postThenSubmit(uint256 b0, uint256 b1, uint256 features, uint256 pd0, uint256 pd1, uint256 flags) external {
        bool hashed = modelOf(flags >> 40) == 3;
        post(b0, features, features >> 8, hashed, false);
        post(b1, features >> 16, features >> 24, hashed, false);
        submit(flags >> 40, b0, b1, pd0, pd1, flags & ~(uint256(0xff) << 16)); // the posted features
    }

    /// @dev Model 1 half the time, 3 a quarter, 2 (not accepted at first) and 4 (never registered) an eighth.
    function modelOf(uint256 modelSel) public pure returns (uint256) {
        uint256 k = modelSel % 8;
        return k < 4 ? 1 : k < 6 ? 3 : k == 6 ? 2 : N_MODELS + 1;
    }

    /// @notice A publisher (or a stranger) withdraws a borrower's posting.
    function withdraw(uint256 who, bool asStranger) external {
        uint256 i = who % N_BORROWERS;
        Posting storage p = _posted[i];
        bool open = p.postedAt != 0 && !p.consumed;
        bool allowed = !asStranger && publisherIdG != 0;
        vm.prank(asStranger ? STRANGER : PUBLISHER);
        try lending.withdrawFeatures(bytes32(uint256(uint160(borrower(i))))) {
            if (!allowed) ++unauthorizedChanges;
            if (!open) ++unexpectedSuccesses;
            p.postedAt = 0;
        } catch {
            if (allowed && open) ++unexpectedFailures;
        }
        _checkPaused();
    }

    /// @notice Time passes (0 to 2 hours; features live 1 hour unless the owner changed it).
    function warp(uint256 dt) external {
        vm.warp(block.timestamp + (dt % 4 == 0 ? dt % 2 hours : dt % 10 minutes));
        _observeStale();
        _checkPaused();
    }

    /// @notice Anyone submits a proof: of a model, about two (possibly equal) borrowers, with either the posted
    ///         features or other ones, a PD per slot (sometimes outside [0, 1]), and a valid or invalid proof.
    function submit(uint256 modelSel, uint256 b0, uint256 b1, uint256 pd0, uint256 pd1, uint256 flags) public {
        uint256 modelId = modelOf(modelSel);
        uint256[2] memory idx = [b0 % N_BORROWERS, b1 % N_BORROWERS];
        uint256[2] memory pdFelts = [_pdFelt(idx[0], pd0, flags), _pdFelt(idx[1], pd1, flags >> 8)];
        bool hashedModel = modelId == 3;
        uint256 slots = hashedModel ? 1 : 2;
        bytes32[] memory subjects = new bytes32[](slots);
        uint256[] memory xs = new uint256[](hashedModel ? 4 : 6);
        for (uint256 s; s < slots; ++s) {
            subjects[s] = bytes32(uint256(uint160(borrower(idx[s]))));
            Posting memory p = _posted[idx[s]];
            bool usePosted = (flags >> (16 + 4 * s)) % 4 != 3; // 3 in 4 (and in postThenSubmit): the posted features
            uint256 a = usePosted ? p.a : (flags >> 24) % 4;
            uint256 b = usePosted ? p.b : (flags >> 28) % 4;
            if (hashedModel) {
                xs[0] = a;
                xs[1] = (flags >> 32) % 8 == 5 ? PARAM_HASH + 1 : PARAM_HASH; // 1 in 8: other weights
                xs[3] = pdFelts[s];
            } else {
                xs[2 * s] = a;
                xs[2 * s + 1] = b;
                xs[4 + s] = pdFelts[s];
            }
        }
        bytes memory proof = (flags >> 36) % 16 == 5 ? bytes("forged") : MockProofs.proofFor(xs);
        _submit(modelId, xs, subjects, proof);
    }

    /// @notice The last acted submission, again (a replay: the same statement, the same proof), or the same
    ///         instances as a proof of the other public-input model (the same postings, another model).
    function replay(bool otherModel) external {
        if (_lastInstances.length == 0) return;
        uint256 id = _lastModel;
        if (otherModel && id != 3) id = id == 1 ? 2 : 1;
        _submit(id, _lastInstances, _lastSubjects, MockProofs.proofFor(_lastInstances));
    }

    // ------------------------------------------------------------------------------------------ owner

    function ownerPause(uint256 choice) external {
        if (choice % 16 == 1) { // pausing 1 in 16, unpausing otherwise: the gate is mostly open
            try lending.pause() {
                pausedG = true;
                for (uint256 i; i < N_BORROWERS; ++i) _ratesAtPause[i] = lending.rateOf(borrower(i));
            } catch {}
        } else {
            try lending.unpause() {
                pausedG = false;
            } catch {}
        }
    }

    function ownerModel(uint256 modelSel, uint256 action) external {
        uint256 id = 1 + modelSel % N_MODELS;
        uint256 a = action % 4;
        if (a == 0 || a == 2) {
            try lending.acceptModel(id, id == 3 ? 1 : 0) {
                acceptedG[id] = true;
            } catch {}
        } else if (a == 1) {
            try lending.dropModel(id) {
                acceptedG[id] = false;
            } catch {}
        } else if (action % 64 == 3) {
            // rarely: a revocation is for good
            try registry.revoke(id) {
                activeG[id] = false;
            } catch {}
        }
        _checkPaused();
    }

    function ownerSetMaxAge(uint256 age) external {
        uint32 a = uint32(1 + age % 3 hours);
        _observeStale();
        lending.setMaxFeatureAge(a);
        maxAgeG = a;
    }

    /// @notice A borrower's open posting goes stale (time passes), the owner then raises maxFeatureAge past its
    ///         age, and someone submits about it with the posted features and a valid proof: it must not act.
    function staleThenRaise(uint256 who, uint256 pd) external {
        uint256 i = who % N_BORROWERS;
        Posting memory p = _posted[i];
        if (p.postedAt == 0 || p.consumed) return;
        if (block.timestamp - p.postedAt <= maxAgeG) vm.warp(p.postedAt + maxAgeG + 1 + pd % 1 hours);
        _observeStale();
        uint32 a = uint32(block.timestamp - p.postedAt + 1 hours);
        lending.setMaxFeatureAge(a);
        maxAgeG = a;
        submit(p.hashed ? 4 : 0, i, i, pd, pd, 0); // model 1 or 3, the posted features, a valid proof
    }

    /// @notice The guardian suspends a model (1 in 8), or the owner resumes it; both refused when there is
    ///         nothing to do.
    function breaker(uint256 modelSel, uint256 action) external {
        uint256 id = 1 + modelSel % N_MODELS;
        if (action % 8 == 1) {
            vm.prank(GUARDIAN);
            try lending.suspendModel(id) {
                if (suspendedG[id]) ++unexpectedSuccesses;
                suspendedG[id] = true;
            } catch {
                if (!suspendedG[id]) ++unexpectedFailures;
            }
        } else {
            try lending.resumeModel(id) {
                if (!suspendedG[id]) ++unexpectedSuccesses;
                suspendedG[id] = false;
            } catch {
                if (suspendedG[id]) ++unexpectedFailures;
            }
        }
        _checkPaused();
    }

    /// @notice The owner sets the posting interval (none a quarter of the time, else up to 2 hours).
    function ownerSetInterval(uint256 interval) external {
        uint32 i = interval % 4 == 0 ? 0 : uint32(interval % 2 hours);
        lending.setMinPostingInterval(i);
        intervalG = i;
    }

    /// @notice The owner sets the breaker's step (1 to 1500 bp).
    function ownerSetStep(uint256 step) external {
        uint32 s = uint32(1 + step % 1500);
        lending.setMaxRateStep(s);
        stepG = s;
    }

    /// @notice The owner disallows the publisher (voiding its postings) or allows it again (a new id).
    function ownerPublisher(bool allowed) external {
        lending.setFeaturePublisher(PUBLISHER, allowed);
        if (allowed && publisherIdG == 0) publisherIdG = ++publisherIdCountG;
        else if (!allowed) publisherIdG = 0;
    }

    /// @notice The owner tries to renounce ownership (it must always revert).
    function ownerRenounces(bool registryToo) external {
        if (_ok(address(lending), abi.encodeCall(lending.renounceOwnership, ()))) ++renounced;
        if (registryToo && _ok(address(registry), abi.encodeCall(registry.renounceOwnership, ()))) ++renounced;
    }

    // --------------------------------------------------------------------------------------- strangers

    /// @notice A stranger tries one of the owners' configuration functions.
    function strangerConfigures(uint256 which, uint256 arg) external {
        vm.startPrank(STRANGER);
        bool changed;
        uint256 w = which % 17;
        uint256 id = 1 + arg % N_MODELS;
        if (w == 13) changed = _ok(address(lending), abi.encodeCall(lending.suspendModel, (id)));
        else if (w == 14) changed = _ok(address(lending), abi.encodeCall(lending.resumeModel, (id)));
        else if (w == 15) changed = _ok(address(lending), abi.encodeCall(lending.setGuardian, (STRANGER)));
        else if (w == 16) changed = _ok(address(lending), abi.encodeCall(lending.setMinPostingInterval, (uint32(arg))));
        else if (w == 11) changed = _ok(address(lending), abi.encodeCall(lending.setMaxRateStep, (uint32(1 + arg % 1e6))));
        else if (w == 12) changed = _ok(address(lending), abi.encodeCall(lending.withdrawFeatures, (bytes32(uint256(uint160(borrower(arg % N_BORROWERS)))))));
        else if (w == 0) changed = _ok(address(lending), abi.encodeCall(lending.setFeaturePublisher, (STRANGER, true)));
        else if (w == 1) changed = _ok(address(lending), abi.encodeCall(lending.setMaxFeatureAge, (uint32(1 + arg % 1e6))));
        else if (w == 2) changed = _ok(address(lending), abi.encodeCall(lending.acceptModel, (1 + arg % N_MODELS, 0)));
        else if (w == 3) changed = _ok(address(lending), abi.encodeCall(lending.dropModel, (1 + arg % N_MODELS)));
        else if (w == 4) changed = _ok(address(lending), abi.encodeCall(lending.pause, ()));
        else if (w == 5) changed = _ok(address(lending), abi.encodeCall(lending.unpause, ()));
        else if (w == 6) changed = _ok(address(lending), abi.encodeCall(lending.transferOwnership, (STRANGER)));
        else if (w == 7) changed = _ok(address(lending), abi.encodeCall(lending.renounceOwnership, ()));
        else if (w == 8) changed = _ok(address(registry), abi.encodeCall(registry.revoke, (1 + arg % N_MODELS)));
        else if (w == 9) {
            changed = _ok(
                address(registry),
                abi.encodeCall(registry.register, (verifier, bytes32(arg | 1), bytes32(arg | 1), 0, Felts.publicLayout(2, 2), 0))
            );
        } else {
            changed = _ok(address(registry), abi.encodeCall(registry.transferOwnership, (STRANGER)));
        }
        vm.stopPrank();
        if (changed) ++unauthorizedChanges;
    }

    // ======================================================================================== internals

    function _ok(address target, bytes memory data) internal returns (bool ok) {
        (ok,) = target.call(data);
    }

    /// @dev (The fuzzer favours 0 and other edge values: adversarial choices are made on non-zero residues.)
    ///      A PD felt: 3 in 4 near the borrower's rate (within about two steps of it), 1 in 8 any in [0, 1],
    ///      1 in 16 above 1, 1 in 16 negative.
    function _pdFelt(uint256 i, uint256 seed, uint256 flags) internal view returns (uint256) {
        uint256 kind = flags % 16;
        if (kind == 14) return 129 + seed % 64; // PD > 1
        if (kind == 15) return Felts.P - 1 - seed % 64; // PD < 0
        if (kind >= 12) return seed % 129; // anywhere in [0, 1]
        uint256 rate = rateG[borrower(i)];
        uint256 reach = 2 * uint256(stepG);
        uint256 lo = rate > BASE + reach ? (rate - BASE - reach) * 128 / SLOPE : 0;
        uint256 hi = (rate + reach - BASE) * 128 / SLOPE;
        if (hi > 128) hi = 128;
        if (lo > hi) lo = hi;
        return lo + seed % (hi - lo + 1);
    }

    /// @dev Marks every posting that is stale now (the reference model's "stale for good").
    function _observeStale() internal {
        for (uint256 i; i < N_BORROWERS; ++i) {
            Posting storage p = _posted[i];
            if (p.postedAt != 0 && block.timestamp - p.postedAt > maxAgeG) p.everStale = true;
        }
    }

    function _submit(uint256 modelId, uint256[] memory xs, bytes32[] memory subjects, bytes memory proof) internal {
        ++submissions;
        _observeStale();
        for (uint256 i; i < N_BORROWERS; ++i) _postingsBefore[i] = _posted[i];
        (bool expected, bytes32 key) = _expected(modelId, xs, subjects, proof);
        uint256[N_BORROWERS] memory before = _rates();
        _recordsBefore = _records();
        bool preconditions = _preconditionsHold(modelId, xs, subjects);
        bool paused = lending.paused();
        _stepNow = lending.maxRateStepBps();

        bool ok;
        bytes4 err;
        vm.recordLogs();
        vm.prank(address(uint160(uint256(keccak256(abi.encode(xs))))));
        try lending.submit(modelId, proof, xs, subjects) returns (bytes32 k) {
            ok = true;
            if (k != key) ++keyDisagreements;
        } catch (bytes memory e) {
            err = bytes4(e);
            if (failsBy[err]++ == 0) failSelectors.push(err);
        }

        uint256[N_BORROWERS] memory after_ = _rates();
        if (ok) {
            ++actedSubmissions;
            actedKeys.push(key);
            if (!preconditions) ++actsWithoutPreconditions;
            if (paused) ++movedWhilePaused;
            if (!expected) ++unexpectedSuccesses;
            for (uint256 s; s < subjects.length; ++s) {
                Posting memory p = _postingsBefore[_index(subjects[s])];
                if (p.consumed) ++doubleActs;
                if (p.postedAt == 0 || p.publisherId == 0 || p.publisherId != publisherIdG) ++voidActs;
                if (p.everStale) ++revivedStale;
                _posted[_index(subjects[s])].consumed = true;
            }
            _lastModel = modelId;
            _lastInstances = xs;
            _lastSubjects = subjects;
            _checkSteps(before, _stepNow);
            for (uint256 i; i < N_BORROWERS; ++i) {
                if (after_[i] != rateG[borrower(i)]) ++rateDisagreements;
            }
        } else {
            if (expected) {
                ++unexpectedFailures;
                lastUnexpectedError = err;
            }
            for (uint256 i; i < N_BORROWERS; ++i) {
                if (after_[i] != before[i]) ++changedOnFailure;
                rateG[borrower(i)] = before[i]; // undo the reference model's tentative updates
            }
            if (_records() != _recordsBefore) ++changedOnFailure;
        }
        if (!postingsAgree()) ++doubleActs;
        for (uint256 i; i < N_BORROWERS; ++i) {
            uint256 r = after_[i];
            if (r != INITIAL && (r < BASE || r > BASE + SLOPE)) ++boundViolations;
        }
        _checkPaused();
    }

    /// @dev Every borrower's subject record, hashed: a refused submission must leave them all as they were.
    function _records() internal view returns (bytes32 h) {
        for (uint256 i; i < N_BORROWERS; ++i) {
            h = keccak256(abi.encode(h, lending.subjectRecord(bytes32(uint256(uint160(borrower(i)))))));
        }
    }

    /// @dev Each update (a RateUpdated event; one submission updates a borrower once, whatever slots it fills)
    ///      moves the borrower's rate by at most the step, to a rate within [BASE, BASE + SLOPE]; a clamped one
    ///      (RateStepLimited) moves exactly one step toward the target it names.
    function _checkSteps(uint256[N_BORROWERS] memory running, uint256 step) internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        bytes32 rateUpdated = keccak256("RateUpdated(address,uint256)");
        bytes32 rateLimited = keccak256("RateStepLimited(address,uint256)");
        bool limited;
        uint256 target;
        for (uint256 j; j < logs.length; ++j) {
            if (logs[j].emitter != address(lending)) continue;
            if (logs[j].topics[0] == rateLimited) {
                (limited, target) = (true, abi.decode(logs[j].data, (uint256)));
                continue;
            }
            if (logs[j].topics[0] != rateUpdated) continue;
            uint256 i = _index(logs[j].topics[1]);
            uint256 next = abi.decode(logs[j].data, (uint256));
            uint256 moved = next > running[i] ? next - running[i] : running[i] - next;
            if (moved > step) ++stepViolations;
            if (limited) {
                // one full step, toward the target, not reaching it
                if (moved != step || (target > running[i]) != (next > running[i]) || next == target) ++stepViolations;
                limited = false;
            }
            if (next < BASE || next > BASE + SLOPE) ++boundViolations;
            running[i] = next;
        }
    }

    /// @dev The reference model: whether the submission must act, and its statement key. Applies the rate
    ///      updates to rateG tentatively (undone by the caller when the gate refused).
    function _expected(uint256 modelId, uint256[] memory xs, bytes32[] memory subjects, bytes memory proof)
        internal
        returns (bool ok, bytes32 key)
    {
        uint256 slots = subjects.length;
        uint256[] memory postedAts = new uint256[](slots);
        ok = !pausedG && modelId <= modelCountG && activeG[modelId] && acceptedG[modelId] && !suspendedG[modelId];
        for (uint256 s; s < slots; ++s) {
            Posting memory p = _posted[_index(subjects[s])];
            postedAts[s] = p.postedAt;
            bool matches = modelId == 3 ? (p.hashed && xs[0] == p.a) : (!p.hashed && xs[2 * s] == p.a && xs[2 * s + 1] == p.b);
            if (p.postedAt == 0 || !matches || p.everStale || block.timestamp - p.postedAt > maxAgeG) ok = false;
            if (p.consumed || p.publisherId != publisherIdG || publisherIdG == 0) ok = false;
        }
        if (modelId == 3 && xs[1] != PARAM_HASH) ok = false;
        key = statementKey(modelId, postedAts, xs, subjects);
        if (keccak256(proof) != keccak256(MockProofs.proofFor(xs))) ok = false;
        if (!ok) return (false, key);
        for (uint256 s; s < slots; ++s) {
            if (s == 1 && subjects[1] == subjects[0]) continue; // a padded batch acts once per subject
            uint256 felt = modelId == 3 ? xs[3] : xs[4 + s];
            if (felt > 128) return (false, key); // PD > 1, or negative (a felt above (P - 1) / 2)
            address who = address(uint160(uint256(subjects[s])));
            uint256 target = BASE + (felt * 1e18 / 128) * SLOPE / 1e18;
            uint256 current = rateG[who];
            uint256 next = target > current + stepG ? current + stepG : current > target + stepG ? current - stepG : target;
            rateG[who] = next;
        }
    }

    /// @dev What the contracts themselves say about an acted submission's preconditions.
    function _preconditionsHold(uint256 modelId, uint256[] memory xs, bytes32[] memory subjects)
        internal
        view
        returns (bool)
    {
        if (modelId == 0 || modelId > registry.modelCount()) return false;
        if (!registry.model(modelId).active || !lending.acceptedModel(modelId).accepted) return false;
        if (lending.isModelSuspended(modelId)) return false;
        for (uint256 s; s < subjects.length; ++s) {
            RiskAdjustedLending.SubjectRecord memory r = lending.subjectRecord(subjects[s]);
            bytes32 c = modelId == 3 ? bytes32(xs[0]) : Felts.commitment(Felts.pair(xs[2 * s], xs[2 * s + 1]));
            if (r.postedAt == 0 || r.commitmentDigest != lending.commitmentDigest(c)) return false;
            if (r.publisherId == 0 || !lending.isActivePublisherId(r.publisherId)) return false;
            if (r.postedAt < lending.staleBefore() || block.timestamp - r.postedAt > lending.maxFeatureAge()) return false;
        }
        return true;
    }

    function _index(bytes32 subject) internal pure returns (uint256) {
        return uint160(uint256(subject)) - 0x1000;
    }

    function _rates() internal view returns (uint256[N_BORROWERS] memory r) {
        for (uint256 i; i < N_BORROWERS; ++i) r[i] = lending.rateOf(borrower(i));
    }

    function _checkPaused() internal {
        if (!lending.paused()) return;
        for (uint256 i; i < N_BORROWERS; ++i) {
            if (lending.rateOf(borrower(i)) != _ratesAtPause[i]) ++movedWhilePaused;
        }
    }

    function failSelectorCount() external view returns (uint256) {
        return failSelectors.length;
    }

    function actedKeyCount() external view returns (uint256) {
        return actedKeys.length;
    }

    function ratesAtPause(uint256 i) external view returns (uint256) {
        return _ratesAtPause[i];
    }
}

"""AdaptiveCouponBond on a real anvil with real proofs of the inflation stand-in: the period's coupon set from
the period's published window (a correction replaces an earlier adjustment), bounded by floor and cap,
negative forecasts decoded."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from onchain_helpers import FIELD_MODULUS, advance_time, expect_revert, load, period_subject

from pipeline import chain, evm, manifest

pytestmark = pytest.mark.slow

PERIOD = 1000
MAX_AGE = PERIOD // 2
TERMS = {
    "initialCouponBps": 400,
    "floorBps": 375,
    "capBps": 425,
    "stepBps": 25,
    "raiseAbove": 3.0,
    "cutBelow": 2.0,
    "periodLength": PERIOD,
}
# Six months of inflation (percent) and what the stand-in forecasts from them (1.015625 x the level).
HIGH, LOW, DEFLATION = [4.0] * 6, [1.0] * 6, [-1.0] * 6


@pytest.fixture(scope="module")
def bond(anvil, circuits, tmp_path_factory):
    ddir = tmp_path_factory.mktemp("bond") / "deployments"
    d = chain.deploy(
        circuits["inflation"].dir,
        anvil.rpc_url,
        "bond",
        deployments_dir=ddir,
        terms=TERMS,
        max_feature_age=MAX_AGE,
    )
    c = chain.Chain(anvil.rpc_url)
    proofs = tmp_path_factory.mktemp("bond-proofs")
    windows = {"high": HIGH, "low": LOW, "deflation": DEFLATION}
    return SimpleNamespace(
        chain=c,
        d=d,
        ddir=ddir,
        handle=chain.open_gate(c, "inflation", ddir),
        paths={k: circuits["inflation"].prove([w], proofs / f"{k}.json") for k, w in windows.items()},
        output_scale=manifest.load(circuits["inflation"].dir).circuit["output_scales"][0],
    )


def period(bond) -> int:
    return bond.handle.gate.functions.currentPeriod().call()


def coupon(bond) -> int:
    return bond.handle.gate.functions.couponBps().call()


def publish(bond, window: str) -> None:
    """The publisher posts the current period's inflation window (its commitment, from the proof's inputs)."""
    chain.post_features([bond.paths[window]], bond.chain.rpc_url, deployments_dir=bond.ddir)


def adjust(bond, window: str) -> dict:
    [s] = chain.submit([bond.paths[window]], bond.chain.rpc_url, deployments_dir=bond.ddir)
    [effect] = s.effects
    return effect


def next_period(bond) -> None:
    advance_time(bond.chain.w3, PERIOD)


def forecast_wad(bond, window: str) -> int:
    """The proof's output as the gate decodes it: signed felt / 2^scale with 18 decimals (exact: the scale,
    14 here since nothing rescales the affine layer's output, is below 18)."""
    felt = int(load(bond.paths[window])["calldata"]["instances"][-1], 16)
    signed = felt - FIELD_MODULUS if felt > FIELD_MODULUS // 2 else felt
    return signed * 10**18 // 2**bond.output_scale


def test_coupon_follows_the_proven_forecast_each_period(bond):
    p0 = period(bond)
    publish(bond, "high")
    effect = adjust(bond, "high")
    assert effect == {
        "event": "CouponAdjusted",
        "period": p0,
        "modelId": bond.d.model_id,
        "oldCouponBps": 400,
        "newCouponBps": 425,
        "forecast": forecast_wad(bond, "high"),
    }
    assert effect["forecast"] == 4_062_500_000_000_000_000
    # The posting is consumed; the same window posted again adjusts from the period's start again: no change.
    expect_revert(lambda: adjust(bond, "high"), "PostingAlreadyConsumed")
    publish(bond, "high")
    assert adjust(bond, "high")["newCouponBps"] == 425 and bond.handle.gate.functions.isPeriodAdjusted(p0).call()

    next_period(bond)
    p1 = period(bond)
    publish(bond, "high")
    assert adjust(bond, "high")["newCouponBps"] == 425  # at the cap

    next_period(bond)
    publish(bond, "low")
    # Last period's proof: not about this period's window.
    expect_revert(
        lambda: chain.submit_calldata(
            bond.handle, load(bond.paths["high"])["calldata"], [period_subject(p1 + 1)]
        ),
        "FeatureCommitmentMismatch",
    )
    # A proof naming last period as its subject.
    expect_revert(
        lambda: chain.submit_calldata(
            bond.handle, load(bond.paths["high"])["calldata"], [period_subject(p1)]
        ),
        "NotCurrentPeriod",
        subject="0x" + period_subject(p1).hex(),
    )
    assert adjust(bond, "low")["newCouponBps"] == 400

    next_period(bond)
    publish(bond, "deflation")
    effect = adjust(bond, "deflation")
    assert effect["forecast"] == forecast_wad(bond, "deflation") == -1_015_625_000_000_000_000
    assert effect["newCouponBps"] == 375

    next_period(bond)
    publish(bond, "deflation")
    assert adjust(bond, "deflation")["newCouponBps"] == 375  # at the floor
    assert coupon(bond) == 375


def test_a_correction_replaces_an_adjustment_from_the_wrong_window(bond):
    """The publisher posts a wrong window, someone acts on it at once (front-running the correction), then the
    corrected window is posted: acting on it sets the period's coupon from the coupon the period started with,
    as if the wrong window had never acted. The wrong proof cannot act again."""
    next_period(bond)
    start = coupon(bond)
    publish(bond, "high")  # wrong
    assert adjust(bond, "high")["newCouponBps"] == min(start + 25, TERMS["capBps"])
    publish(bond, "low")  # the correction
    expect_revert(lambda: adjust(bond, "high"), "FeatureCommitmentMismatch")  # the wrong window is gone
    effect = adjust(bond, "low")
    assert effect["oldCouponBps"] == min(start + 25, TERMS["capBps"])
    assert effect["newCouponBps"] == coupon(bond) == max(start - 25, TERMS["floorBps"])
    expect_revert(lambda: adjust(bond, "high"), "PostingAlreadyConsumed")


def test_a_window_withdrawn_before_anyone_acts(bond):
    next_period(bond)
    start = coupon(bond)
    publish(bond, "high")  # wrong, and noticed in time
    [tx] = chain.withdraw_features("inflation", bond.chain.rpc_url, deployments_dir=bond.ddir)
    assert tx.startswith("0x")
    expect_revert(lambda: adjust(bond, "high"), "NoFeaturesPosted", subject="0x" + period_subject(period(bond)).hex())
    expect_revert(lambda: chain.withdraw_features("inflation", bond.chain.rpc_url, deployments_dir=bond.ddir),
                  "NoOpenPosting")
    assert coupon(bond) == start
    publish(bond, "low")
    assert adjust(bond, "low")["newCouponBps"] == max(start - 25, TERMS["floorBps"])


def test_stale_window(bond):
    start = bond.handle.gate.functions.startTime().call()
    advance_time(bond.chain.w3, PERIOD - (bond.chain.latest_timestamp() - start) % PERIOD)  # a period begins
    publish(bond, "low")
    advance_time(bond.chain.w3, MAX_AGE + 1)  # same period, but the window is now too old
    expect_revert(lambda: adjust(bond, "low"), "StaleFeatures", maxFeatureAge=MAX_AGE)


def test_bond_acts_on_one_inference_per_period(bond):
    registry = bond.chain.contract(bond.d.registry_address, evm.contract_artifact("ModelRegistry")["abi"])
    h = b"\x01" * 32
    receipt = bond.chain.transact(
        registry.functions.register(bond.d.verifier.address, h, h, 7, (2, False, 6, 1, 0), bytes(32)),
        "register",
    )
    two_slots = registry.events.ModelRegistered().process_receipt(receipt)[0]["args"]["modelId"]
    expect_revert(
        lambda: bond.chain.transact(bond.handle.gate.functions.acceptModel(two_slots, 0), "accept"),
        "UnsupportedSlotCount",
        slots=2,
    )


def test_coupon_terms_are_checked(bond):
    artifact = evm.contract_artifact("AdaptiveCouponBond")
    now = bond.chain.latest_timestamp()

    def deploy_bond(**changes):
        t = {**TERMS, **changes}
        terms = (
            t["initialCouponBps"],
            t["floorBps"],
            t["capBps"],
            t["stepBps"],
            int(t["raiseAbove"] * 10**18),
            int(t["cutBelow"] * 10**18),
            t.get("startTime", now),
            t["periodLength"],
        )
        return bond.chain.deploy(artifact, [bond.d.registry_address, bond.chain.account, PERIOD, terms])

    expect_revert(lambda: deploy_bond(floorBps=500), "InvalidCouponTerms")
    expect_revert(lambda: deploy_bond(capBps=10_001), "InvalidCouponTerms")  # above 100%
    expect_revert(lambda: deploy_bond(cutBelow=4.0), "InvalidCouponTerms")
    expect_revert(lambda: deploy_bond(periodLength=0), "InvalidCouponTerms")
    expect_revert(
        lambda: bond.chain.deploy(
            artifact, [bond.d.registry_address, bond.chain.account, 0, (400, 375, 425, 25, 3, 2, now, PERIOD)]
        ),
        "ZeroMaxFeatureAge",
    )
    future = deploy_bond(startTime=now + 10 * PERIOD)
    gate = bond.chain.contract(future.address, artifact["abi"])
    expect_revert(lambda: bond.chain.call(gate.functions.currentPeriod(), "currentPeriod"), "BondNotStarted")

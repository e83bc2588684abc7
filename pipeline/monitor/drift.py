"""Drift: what a prover proved recently, against its circuit's data profile (`profile`).

Three checks, each against an operator's threshold (`Thresholds`):

* input PSI, per feature: the population stability index of the proven rows' values against the profile's
  quantile bins, ``PSI = sum_b (a_b - e_b) * ln(a_b / e_b)``, where e_b is the profile's share in bin b and a_b
  the proven rows' share, each raised to EPSILON (1e-4) when empty so an empty bin costs a large but finite
  amount. 0 for identical distributions; 0.1-0.25 is commonly read as a moderate shift, above 0.25 a
  significant one;
* output PSI, per output value, the same way (plus the mean shift in the profile's standard deviations and
  the median's shift, reported, not thresholded);
* the share of rows the prover refused as outside the calibrated range: failed jobs whose recorded error
  class is OutOfRangeError (stores written before error classes were recorded: reasons in OutOfRangeError's
  own wording), over those plus the proven rows.

Small windows: adjacent profile bins are merged until each expects at least MIN_EXPECTED_PER_BIN (5) of the
window's rows (the usual chi-square rule), so a window of 12 rows is judged on 2 bins rather than on 10
mostly-empty ones, where each empty bin alone would add ~0.7 to the PSI by chance. Each entry records the
`bins_used`. PSI then has a noise floor: two samples of one distribution, of N and M values, give about
(bins_used - 1) * (1/N + 1/M) (a chi-square's mean over N). Below `Thresholds.min_rows` proven rows the PSI checks
do not apply and the verdict is `insufficient` unless the refused share alone crossed its threshold. This is
a statistical alarm about the rows this prover proved, nothing more: it proves nothing about the model.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .. import manifest as manifest_mod
from .. import profile as profile_mod
from ..artifacts import sha256_file, write_json_atomic
from ..errors import UsageError, ZkinferError

SCHEMA = "zkinfer/drift@1"
DRIFT_JSON = "drift.json"
DRIFT_PNG = "drift.png"
EPSILON = 1e-4
MIN_EXPECTED_PER_BIN = 5
PSI_FORMULA = ("PSI = sum over the profile's bins of (a - e) * ln(a / e); e: the profile's share, a: the proven "
               f"rows' share, each at least {EPSILON:g}")
OUT_OF_RANGE = "OutOfRangeError"
# How OutOfRangeError's messages say it (pipeline.prove, pipeline.witness): only for failures recorded before
# the job store kept error classes.
_OUT_OF_RANGE_WORDING = ("outside the range the circuit was calibrated for", "outside the calibrated range")
NODE_JOBS = "jobs"  # a prover node (`zkinfer serve DIR`) keeps its batch OUTDIR here
VERDICTS = ("ok", "drift", "insufficient")


@dataclass(frozen=True)
class Thresholds:
    psi_max: float = 0.25          # per input feature
    output_psi_max: float = 0.25   # per output value
    refused_max: float = 0.05      # share of rows refused as outside the calibrated range
    min_rows: int = 100            # proven rows below which the PSI checks do not apply

    def __post_init__(self):
        for name in ("psi_max", "output_psi_max"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise UsageError(f"{name} must be a positive number, got {v}")
        if not (isinstance(self.refused_max, (int, float)) and 0 <= self.refused_max < 1):
            raise UsageError(f"refused_max must be in [0, 1), got {self.refused_max}")
        if not (isinstance(self.min_rows, int) and self.min_rows >= 1):
            raise UsageError(f"min_rows must be at least 1, got {self.min_rows}")


@dataclass(frozen=True)
class Trip:
    """Suspend the model on chain when drift is found (`pipeline.chain.suspend_model`)."""

    rpc_url: str
    deployments_dir: str | os.PathLike = "deployments"
    private_key: str | None = None


@dataclass
class DriftReport:
    data: dict                      # drift.json's content
    path: Path                      # drift.json
    plot_path: Path | None = None   # drift.png (None when matplotlib is not installed)
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return self.data["verdict"]

    @property
    def crossed(self) -> list[str]:
        return self.data["crossed"]

    @property
    def exit_code(self) -> int:
        """1 when a threshold was crossed, else 0 (`insufficient` included: nothing crossed)."""
        return 1 if self.verdict == "drift" else 0

    def summary_lines(self, top: int = 5) -> list[str]:
        d, t = self.data, self.data["thresholds"]
        r = d["rows"]
        window = f"the last {d['window']} proven" if d["window"] else "all"
        lines = [f"store:     {d['store']} (circuit {d['circuit']['name']}, id {d['circuit']['circuit_id'][:16]}...)",
                 f"profile:   {d['profile']['path']} ({d['profile']['count']} inferences; {d['profile']['source']})",
                 f"rows:      {r['proved']} proved, {r['refused']} refused as outside the calibrated range "
                 f"({window} rows; {r['other_failed']} other failures not counted)"]
        ranked = sorted(d["inputs"], key=lambda f: -f["psi"])[:top]
        if ranked:
            lines.append("inputs:    top PSI " + ", ".join(f"{f['name']} {f['psi']:.3f}" for f in ranked)
                         + f" (threshold {t['psi_max']:g}; noise floor ~{d['psi_noise_floor']:.3f})")
        if d["outputs"]:
            lines.append("outputs:   " + ", ".join(
                f"{o['name']} PSI {o['psi']:.3f}, mean shift {_signed(o['mean_shift_std'])} std"
                for o in sorted(d["outputs"], key=lambda o: -o["psi"])[:top]) + f" (threshold {t['output_psi_max']:g})")
        elif d.get("outputs_note"):
            lines.append(f"outputs:   {d['outputs_note']}")
        lines.append(f"refused:   share {d['refused']['share']:.4f} (threshold {t['refused_max']:g})")
        lines.extend(f"note:      {n}" for n in self.notes)
        more = len(d["crossed"]) - 3
        shown = d["crossed"][:3] + ([f"{more} more in {self.path.name}"] if more > 0 else [])
        why = f" ({'; '.join(shown)})" if shown else ""
        if d["verdict"] == "insufficient":
            why = f" ({r['proved']} proven rows < min rows {t['min_rows']}: PSI not judged)"
        lines.append(f"verdict:   {d['verdict']}{why}")
        if d.get("trip"):
            tr = d["trip"]
            lines.append(f"trip:      {'suspension sent: tx ' + tr['tx_hash'] if tr.get('sent') else tr.get('why')}")
        lines.append(f"report:    {self.path}" + (f", {self.plot_path}" if self.plot_path else ""))
        return lines


def _signed(v) -> str:
    return "n/a" if v is None else f"{v:+.2f}"


def psi(observed, expected, eps: float = EPSILON) -> float:
    """The population stability index of observed bin shares against expected ones (see the module doc)."""
    a = np.maximum(np.asarray(observed, dtype=np.float64), eps)
    e = np.maximum(np.asarray(expected, dtype=np.float64), eps)
    return float(np.sum((a - e) * np.log(a / e)))


def find_store(run_dir: str | os.PathLike) -> Path:
    """The batch OUTDIR holding the job store: `run_dir` itself, or a prover node's `run_dir/jobs`."""
    from ..jobs.store import DB_FILE

    d = Path(run_dir)
    for candidate in (d, d / NODE_JOBS):
        if (candidate / DB_FILE).is_file():
            return candidate
    raise UsageError(f"no job store in {d}: neither {d / DB_FILE} (a `zkinfer batch` OUTDIR) nor "
                     f"{d / NODE_JOBS / DB_FILE} (a `zkinfer serve` directory) exists")


def _flat(obj) -> list[float] | None:
    if isinstance(obj, dict):
        obj = obj.get("input_data")
    if not isinstance(obj, list):
        return None
    out = []
    for t in obj:
        if isinstance(t, list):
            out.extend(t)
        else:
            out.append(t)
    try:
        return [float(v) for v in out]
    except (TypeError, ValueError):
        return None


def _refused(row: dict) -> str | None:
    """How a failed job is known to be refused as out of range: 'error_class' or 'reason_text', or None."""
    if row["error_class"] == OUT_OF_RANGE:
        return "error_class"
    if row["error_class"] is None and row["input_json"] is not None and any(
            w in (row["reason"] or "") for w in _OUT_OF_RANGE_WORDING):
        return "reason_text"
    return None


def merge_bins(observed, expected, n: int, min_expected: float = MIN_EXPECTED_PER_BIN):
    """Adjacent bins merged, in order, until each expects at least `min_expected` of `n` rows (the last
    group absorbs a short remainder). Returns (observed, expected) shares over the merged bins."""
    groups, start, acc = [], 0, 0.0
    for i, e in enumerate(expected):
        acc += e
        if acc * n >= min_expected:
            groups.append((start, i + 1))
            start, acc = i + 1, 0.0
    if start < len(expected):
        groups = groups[:-1] + [(groups[-1][0] if groups else 0, len(expected))]
    o, e = np.asarray(observed, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return np.array([o[a:b].sum() for a, b in groups]), np.array([e[a:b].sum() for a, b in groups])


def _compare(values: np.ndarray, entry: dict, limit: float) -> dict:
    observed = profile_mod.bin_shares(values, entry["edges"])
    merged_observed, merged_expected = merge_bins(observed, entry["shares"], len(values))
    value = psi(merged_observed, merged_expected)
    mean = float(values.mean())
    std = entry["std"]
    median = float(np.median(values))
    return {"name": entry["name"], "psi": value, "crossed": value > limit, "mean": mean,
            "profile_mean": entry["mean"],
            "mean_shift_std": (mean - entry["mean"]) / std if std > 0 else None,
            "median": median, "profile_median": entry["quantiles"]["p50"],
            "median_shift_std": (median - entry["quantiles"]["p50"]) / std if std > 0 else None,
            "outside_profile_range": float(np.mean((values < entry["min"]) | (values > entry["max"]))),
            "bins_used": len(merged_expected),
            "observed_shares": observed.tolist(), "expected_shares": list(entry["shares"])}


def monitor(run_dir: str | os.PathLike, *, circuit_dir: str | os.PathLike | None = None, window: int | None = None,
            thresholds: Thresholds = Thresholds(), out: str | os.PathLike | None = None,
            trip: Trip | None = None, plot: bool = True) -> DriftReport:
    """`zkinfer monitor`: compare the rows proven in `run_dir`'s job store (the most recent `window` proven
    rows, by store seq, and the out-of-range refusals among them; None: all) with the circuit's calibration
    profile. The circuit is the one the store is bound to unless `circuit_dir` is given (its id must match).
    Writes `out/drift.json` and `out/drift.png` (default `out`: `run_dir`). With `trip`, a `drift` verdict
    sends the on-chain suspension and drift.json records its transaction.

    Raises UsageError when there is no store, no bound circuit, or the circuit has no profile."""
    from ..jobs.store import JobStore

    if window is not None and (not isinstance(window, int) or window < 1):
        raise UsageError(f"window must be at least 1 row, got {window}")
    store_dir = find_store(run_dir)
    with JobStore(store_dir) as store:
        meta = store.meta()
        rows = store.finished_rows(window)  # from the window's first proven row on
    if circuit_dir is None:
        if not meta.get("circuit_dir"):
            raise UsageError(f"{store_dir / 'jobs.sqlite'} is bound to no circuit: pass --circuit DIR")
        circuit_dir = meta["circuit_dir"]
    m = manifest_mod.load(circuit_dir)
    if meta.get("circuit_id") not in (None, m.circuit_id):
        raise UsageError(f"{store_dir} holds jobs for circuit id {meta['circuit_id'][:16]}..., but {m.dir} is "
                         f"{m.circuit_id[:16]}...: pass the circuit those rows were proven with")
    profile = profile_mod.load(m)
    profile_path = m.artifact(profile_mod.PROFILE)

    proved = [r for r in rows if r["state"] == "proved"]
    refused_by: dict[str, int] = {}
    other_failed = 0
    for r in rows:
        if r["state"] != "failed":
            continue
        how = _refused(r)
        if how:
            refused_by[how] = refused_by.get(how, 0) + 1
        else:
            other_failed += 1
    n_refused = sum(refused_by.values())

    n_in, n_out = len(profile["inputs"]), len(profile["outputs"])
    xs, ys, skipped, no_outputs = [], [], 0, 0
    for r in proved:
        x = _flat(json.loads(r["input_json"])) if r["input_json"] else None
        if x is None or len(x) != n_in:
            skipped += 1
            continue
        xs.append(x)
        y = _flat(json.loads(r["outputs_json"])) if r["outputs_json"] else None
        if y is not None and len(y) == n_out:
            ys.append(y)
        else:
            no_outputs += 1
    n = len(xs)
    t = thresholds
    inputs = []
    if n:
        x = np.asarray(xs, dtype=np.float64)
        inputs = [_compare(x[:, j], e, t.psi_max) for j, e in enumerate(profile["inputs"])]
    outputs, outputs_note = [], None
    if ys and n_out:
        y = np.asarray(ys, dtype=np.float64)
        outputs = [_compare(y[:, j], e, t.output_psi_max) for j, e in enumerate(profile["outputs"])]
    elif not n_out:
        outputs_note = "the profile has no outputs: no output shift measured"
    elif n:
        outputs_note = "no proven outputs recorded (private outputs stay with the prover): no output shift measured"
    if no_outputs and ys:
        outputs_note = f"{no_outputs} proven rows without recorded outputs left out of the output checks"

    judged = n >= t.min_rows
    crossed = []
    if judged:
        crossed += [f"input {f['name']} PSI {f['psi']:.3f} > {t.psi_max:g}" for f in inputs if f["crossed"]]
        if len(ys) >= t.min_rows:
            crossed += [f"output {o['name']} PSI {o['psi']:.3f} > {t.output_psi_max:g}"
                        for o in outputs if o["crossed"]]
    considered = n + n_refused
    share = n_refused / considered if considered else 0.0
    if considered >= t.min_rows and share > t.refused_max:
        crossed.append(f"refused share {share:.4f} > {t.refused_max:g}")
    verdict = "drift" if crossed else ("ok" if judged else "insufficient")
    bins = max((f["bins_used"] for f in inputs), default=0)
    noise = (bins - 1) * (1 / n + 1 / profile["count"]) if n and bins else None

    out_dir = Path(out) if out is not None else Path(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "schema": SCHEMA,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_dir": str(run_dir), "store": str(store_dir / "jobs.sqlite"),
        "circuit": {"name": m.name, "dir": str(m.dir), "circuit_id": m.circuit_id},
        "profile": {"path": str(profile_path), "sha256": sha256_file(profile_path),
                    "count": profile["count"], "bins": profile["bins"], "source": profile["source"]},
        "thresholds": asdict(t), "window": window,
        "rows": {"proved": n, "refused": n_refused, "considered": considered, "other_failed": other_failed,
                 "skipped": skipped, "with_outputs": len(ys),
                 "seq_range": [proved[0]["seq"], proved[-1]["seq"]] if proved else None},
        "psi_formula": PSI_FORMULA, "psi_noise_floor": noise,
        "inputs": inputs, "outputs": outputs, "outputs_note": outputs_note,
        "refused": {"count": n_refused, "share": share, "matched_by": refused_by},
        "verdict": verdict, "crossed": crossed, "trip": None, "plot": None,
    }
    report = DriftReport(data, out_dir / DRIFT_JSON)
    if noise is not None and judged and noise > t.psi_max / 2:
        report.notes.append(f"PSI's noise floor (~{noise:.3f} with {n} rows and a {profile['count']}-row profile) is "
                            f"over half the threshold: widen --window or profile more data (--profile-from)")
    if plot:
        from .plot import write_plot

        report.plot_path = write_plot(out_dir / DRIFT_PNG, data)
        data["plot"] = report.plot_path.name if report.plot_path else None
    write_json_atomic(report.path, data)
    if trip is not None:
        _trip(report, m, trip)
    return report


def _trip(report: DriftReport, m: manifest_mod.Manifest, trip: Trip) -> None:
    """Send the suspension when the verdict is drift; drift.json records what happened, failure included."""
    rec = {"requested": True, "circuit": m.name, "rpc_url": trip.rpc_url, "deployments": str(trip.deployments_dir)}
    from ..chain import model_suspended, suspend_model

    if report.verdict != "drift":
        rec.update(sent=False, why=f"not sent: verdict {report.verdict}")
    elif model_suspended(m.name, trip.rpc_url, deployments_dir=trip.deployments_dir):
        # The gate refuses a second suspension (ModelAlreadySuspended): a monitor run by cron must not fail.
        rec.update(sent=False, already_suspended=True, why="not sent: the model is already suspended", at=time.time())
    else:
        try:
            tx = suspend_model(m.name, trip.rpc_url, deployments_dir=trip.deployments_dir,
                               private_key=trip.private_key)
        except ZkinferError as e:
            rec.update(sent=False, why=f"suspension failed: {e.message}", at=time.time())
            report.data["trip"] = rec
            write_json_atomic(report.path, report.data)
            raise
        rec.update(sent=True, tx_hash=tx if isinstance(tx, str) else str(tx), at=time.time())
    report.data["trip"] = rec
    write_json_atomic(report.path, report.data)

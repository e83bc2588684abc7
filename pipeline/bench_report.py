"""`bench/REPORT.md` and its plots, generated from `bench/results.json` alone (never from a second source).

    write_report(json.loads(Path("bench/results.json").read_text()), Path("bench"))

`make bench` writes it after measuring; `zkinfer bench --report-only` regenerates it from the results file
without measuring. Every number in the report is read from the results dict; a section the results lack
is reported as not measured. Plots need matplotlib (the `report` extra, which `make install` installs),
drawn with the Agg backend (no display).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .artifacts import write_text_atomic

REPORT = "REPORT.md"
PLOTS = {"batching_gas": "batching_gas.png", "batching_prove": "batching_prove.png",
         "overhead": "overhead.png", "estimates": "estimates.png"}


def _n(v, digits: int = 0) -> str:
    """A number as the report prints it: thousands separated, `digits` decimals; '-' for none."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int) or digits == 0:
        return f"{round(v):,}"
    return f"{v:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows), ""]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, out_dir: Path, plot: str) -> str:
    """Lay out, write and close one figure; returns its file name."""
    fig.tight_layout()
    fig.savefig(out_dir / PLOTS[plot], dpi=100)
    plt.close(fig)
    return PLOTS[plot]


def _plot_batching(rows: list[dict], targets: dict, out_dir: Path) -> list[str]:
    plt = _pyplot()
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return []
    ks = [r["k"] for r in ok]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(ks, [r["gas_per_inference"] for r in ok], "o-", label="verification")
    ax.plot(ks, [r["action_gas_per_inference"] for r in ok], "s-", label="whole gated action")
    for name, style in (("gas_per_inference", ":"), ("action_gas_per_inference", "--")):
        if name in targets:
            ax.axhline(targets[name]["target"], color="grey", linestyle=style, label=f"target: {name}")
    ax.set(xscale="log", yscale="log", xlabel="K (inferences per proof)", ylabel="gas per borrower",
           title="credit_risk, hashed inputs: gas per borrower against K")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.legend(fontsize=8)
    _save(plt, fig, out_dir, "batching_gas")

    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(ks, [r["prove_s_per_inference"] for r in ok], "o-")
    ax.set(xscale="log", yscale="log", xlabel="K (inferences per proof)", ylabel="prove seconds per inference",
           title="credit_risk, hashed inputs: prove time per inference against K")
    ax.set_xticks(ks, [str(k) for k in ks])
    return [PLOTS["batching_gas"], _save(plt, fig, out_dir, "batching_prove")]


def _plot_overhead(rows: list[dict], out_dir: Path) -> list[str]:
    plt = _pyplot()
    if not rows:
        return []
    kinds = [("prove_zkinfer_library", "zkinfer (library)"), ("prove_ezkl_library", "bare ezkl (library)"),
             ("prove_zkinfer_cli", "zkinfer prove (CLI)"), ("prove_ezkl_script", "bare ezkl (script)")]
    width = 0.8 / len(kinds)
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (key, label) in enumerate(kinds):
        xs = [j + i * width for j in range(len(rows))]
        med = [r["timings"][key]["median"] for r in rows]
        err = [[m - r["timings"][key]["min"] for m, r in zip(med, rows, strict=True)],
               [r["timings"][key]["max"] - m for m, r in zip(med, rows, strict=True)]]
        ax.bar(xs, med, width, yerr=err, capsize=2, label=label)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))], [r["model"] for r in rows])
    ax.set(ylabel="prove seconds (median, min-max)", title="zkinfer against bare ezkl, same circuit files")
    ax.legend(fontsize=8)
    return [_save(plt, fig, out_dir, "overhead")]


def _plot_estimates(rows: list[dict], out_dir: Path) -> list[str]:
    plt = _pyplot()
    quantities = ["logrows", "pk_bytes", "peak_bytes", "prove_s", "verify_gas"]
    if not rows:
        return []
    width = 0.8 / len(quantities)
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, q in enumerate(quantities):
        xs, ys = [], []
        for j, r in enumerate(rows):
            if q in r.get("ratios", {}):
                xs.append(j + i * width)
                ys.append(r["ratios"][q]["ratio"])
        ax.bar(xs, ys, width, label=q)
    ax.axhspan(0.5, 2.0, color="green", alpha=0.08, label="within 2x")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(rows))], [r["model"] for r in rows])
    ax.set(ylabel="predicted / measured", title="zkinfer circuit estimate against the built circuits")
    ax.legend(fontsize=7)
    return [_save(plt, fig, out_dir, "estimates")]


def _machine_lines(results: dict) -> list[str]:
    m = results.get("machine", {})
    when = results.get("measured_at", {})
    return ["## Machine and versions", "",
            *_table(["what", "value"], [
                ["platform", str(m.get("platform", "-"))], ["processor", str(m.get("processor", "-"))],
                ["CPUs", _n(m.get("cpus"))], ["RAM", f"{_n(m.get('ram_gb'), 1)} GB"],
                ["python", str(m.get("python", "-"))], ["ezkl", str(results.get("ezkl_version", "-"))],
                ["zkinfer", str(m.get("zkinfer", "-"))],
                *([[f"measured: {k}", v] for k, v in sorted(when.items())])])]


def _overhead_body(rows: list[dict]) -> list[str]:
    if not rows:
        return ["Not measured (`zkinfer bench --section overhead`).", ""]
    out = ["Same circuit files, interleaved runs; library = in this process, CLI/script = a process each. "
            "Seconds are medians (min-max in `results.json`).", "",
            *_table(["model", "logrows", "zkinfer prove s", "ezkl prove s", "ratio", "zkinfer prove (CLI) s",
                     "ezkl script s", "CLI ratio", "zkinfer verify s", "ezkl verify s", "batch ratio"],
                    [[r["model"], _n(r.get("logrows")), _n(r["zkinfer_prove_s"], 3), _n(r["ezkl_prove_s"], 3),
                      _n(r["prove_ratio"], 3), _n(r["timings"]["prove_zkinfer_cli"]["median"], 3),
                      _n(r["timings"]["prove_ezkl_script"]["median"], 3), _n(r.get("cli_prove_ratio"), 3),
                      _n(r["zkinfer_verify_s"], 4), _n(r["ezkl_verify_s"], 4),
                      _n(r.get("batch", {}).get("ratio"), 3)] for r in rows])]
    s = rows[0].get("cli_startup")
    if s:
        out += [f"Process start-up, paid once per CLI call: `zkinfer --help` {_n(s['zkinfer_help_s']['median'], 3)} s, "
                f"`python -c 'import ezkl'` {_n(s['python_import_ezkl_s']['median'], 3)} s.", ""]
    over = [r for r in rows if r["prove_ratio"] > 1.05]
    out += [f"Target: library prove within 1.05x of bare ezkl: met for {len(rows) - len(over)} of {len(rows)} "
            "model(s)." + (f" Over: {', '.join(r['model'] for r in over)}." if over else ""), ""]
    for r in over:
        p = r.get("profile")
        if not p or "mock" not in p.get("ezkl_calls_s", {}):
            continue
        mock, total = p["ezkl_calls_s"]["mock"], p["total_s"]
        out += [f"{r['model']}'s excess ({_n(r['zkinfer_prove_s'] - r['ezkl_prove_s'], 3)} s a proof at the medians): "
                f"ezkl's mock prover takes {_n(mock, 3)} s of its {_n(total, 3)} s profiled prove "
                f"({_n(100 * mock / total, 1)}%), and zkinfer's own code {_n(p['outside_ezkl_s'], 3)} s. The mock "
                "runs on purpose: ezkl's prove hangs on a witness that falls off a lookup table, the mock turns "
                "that into an error naming the input. The rest is run-to-run spread (min-max in results.json).", ""]
    for r in rows:
        p = r.get("profile")
        if not p:
            continue
        calls = ", ".join(f"{k} {_n(v, 3)} s" for k, v in p["ezkl_calls_s"].items())
        top = "; ".join(f"`{t['function']}` {_n(t['own_s'], 3)} s" for t in p["top_outside_ezkl"][:4])
        out += [f"- {r['model']} (cProfile of one library prove, {_n(p['total_s'], 3)} s): inside ezkl {calls}; "
                f"outside ezkl {_n(p['outside_ezkl_s'], 3)} s, largest: {top}."]
    return out + [""]


def _overhead_lines(rows: list[dict]) -> list[str]:
    return ["## zkinfer against bare ezkl", "", *_overhead_body(rows),
            *([f"![zkinfer against bare ezkl]({PLOTS['overhead']})", ""] if rows else [])]


def _gas_model_lines(g: dict) -> list[str]:
    if not g:
        return []
    def k_text(k):
        return f"K >= {_n(k)}" if k else "no K (the per-borrower part alone exceeds it)"
    return [f"Where the gas goes (a line through K = {g['from_k'][0]} and K = {g['from_k'][1]}): verification costs "
            f"{_n(g['verify_fixed_gas'])} gas per proof (pairing check, transcript, openings: shared by the K "
            f"borrowers) plus {_n(g['verify_per_borrower_gas'])} per borrower (its hash and PD instances: calldata "
            f"and the verifier's work on them); the gate adds {_n(g['gate_per_borrower_gas'])} per borrower (one "
            "cold read and one warm write of the borrower's record, its RateUpdated event, its subject's calldata, "
            f"the loops). So a borrower never costs less than {_n(g['action_per_borrower_floor_gas'])} gas, "
            f"whatever K. On this line, verification <= 5,000 per borrower needs {k_text(g['k_for_verify_target'])}; "
            f"the whole action <= 12,000 needs {k_text(g['k_for_action_target'])}.", ""]


def _batching_body(rows: list[dict], targets: dict, gas_model: dict | None = None) -> list[str]:
    if not rows:
        return ["Not measured (`zkinfer bench --section batching`).", ""]
    ok = [r for r in rows if "error" not in r]
    out = _table(["K", "logrows", "verifier", "proof bytes", "prove s / inference", "peak RSS MB", "pk MB",
                  "verification gas / borrower", "whole action gas / borrower"],
                 [[_n(r["k"]), _n(r["logrows"]), str(r["verifier"]), _n(r.get("proof_bytes")),
                   _n(r["prove_s_per_inference"], 4), _n(r["peak_rss_mb"]), _n(r["pk_bytes"] / 2**20),
                   _n(r["gas_per_inference"]), _n(r["action_gas_per_inference"])] for r in ok])
    for r in rows:
        if "error" in r:
            out += [f"The curve stops at K = {r['k']}: {r['error']}", ""]
    if targets:
        out += [f"Targets at K = {targets['k']}:", ""]
        out += [f"- {name}: {_n(t['measured'], 4)} against {_n(t['target'], 2)}: {'met' if t['met'] else 'not met'}"
                for name, t in targets.items() if name != "k"]
        out += [""]
    return out + _gas_model_lines(gas_model or {})


def _batching_lines(rows: list[dict], targets: dict, gas_model: dict | None = None) -> list[str]:
    out = ["## Many inferences per proof (credit_risk, hashed inputs)", "", *_batching_body(rows, targets, gas_model)]
    if any("error" not in r for r in rows):
        out += [f"![gas per borrower]({PLOTS['batching_gas']})", "", f"![prove time]({PLOTS['batching_prove']})", ""]
    return out


def _throughput_body(t: dict) -> list[str]:
    if not t or "configurations" not in t:
        return ["Not measured (`zkinfer bench --section throughput`).", ""]
    out = _table(["K", "workers", "inferences", "seconds", "inferences per hour"],
                  [[_n(c["k"]), _n(c.get("workers")), _n(c.get("inferences")), _n(c.get("elapsed_s"), 1),
                    _n(c.get("inferences_per_hour")) if "inferences_per_hour" in c
                    else c.get("skipped") or c.get("error", "-")] for c in t["configurations"]])
    out += [f"Best: K = {_n(t['k'])}, {_n(t['workers'])} worker(s): {_n(t['inferences_per_hour'])} inferences per "
            f"hour (target {_n(t.get('target_per_hour'))}).", ""]
    return out


def _throughput_lines(t: dict) -> list[str]:
    return ["## Throughput (`zkinfer batch` runner)", "", *_throughput_body(t)]


def _estimates_body(rows: list[dict]) -> list[str]:
    if not rows:
        return ["Not measured (`zkinfer bench --section estimates`).", ""]
    quantities = [("logrows", 0), ("pk_bytes", 0), ("peak_bytes", 0), ("prove_s", 2), ("verify_gas", 0)]
    out = _table(["model", *(f"{q} predicted / measured" for q, _ in quantities)],
                  [[r["model"], *(f"{_n(r['predicted'].get(q), d)} / {_n(r['measured'].get(q), d)}"
                                  for q, d in quantities)] for r in rows])
    misses = [f"{r['model']} {q} ({_n(v['ratio'], 2)}x)" for r in rows for q, v in r.get("ratios", {}).items()
              if not v["within_2x"]]
    return out + ["Within 2x: " + ("all compared quantities." if not misses else f"all but {', '.join(misses)}."), ""]


def _estimates_lines(rows: list[dict]) -> list[str]:
    return ["## Cost before you build: `zkinfer circuit estimate` against the built circuits", "",
            *_estimates_body(rows), *([f"![predicted against measured]({PLOTS['estimates']})", ""] if rows else [])]


def write_report(results: dict, out_dir: str | os.PathLike) -> Path:
    """REPORT.md and the PNG plots into `out_dir`, from a results dict as `bench.run` writes it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    batching, targets = results.get("batching") or [], results.get("batching_targets") or {}
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        plots = ["Plots need matplotlib (`pip install -e '.[report]'`, which `make install` does): not drawn.", ""]
    else:
        plots = []
        _plot_batching(batching, targets, out_dir)
        _plot_overhead(results.get("overhead") or [], out_dir)
        _plot_estimates(results.get("estimates") or [], out_dir)
    lines = ["# zkinfer benchmark report", "",
             "Generated by `make bench` (or `zkinfer bench --report-only`) from `bench/results.json`; every number "
             "below is read from that file. Timings mean something only on an otherwise idle machine.", "", *plots,
             *_machine_lines(results), *_overhead_lines(results.get("overhead") or []),
             *_batching_lines(batching, targets, results.get("batching_gas_model")), *_throughput_lines(results.get("throughput") or {}),
             *_estimates_lines(results.get("estimates") or [])]
    path = out_dir / REPORT
    path.write_text("\n".join(lines))
    return path


# README blocks regenerated from the results, between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`: the
# README's benchmark tables are never typed by hand. A section the results lack leaves its block as it was.
README_BLOCKS = {
    "overhead": lambda r: _overhead_body(r.get("overhead") or []) if r.get("overhead") else None,
    "batching": lambda r: (_batching_body(r["batching"], r.get("batching_targets") or {},
                                          r.get("batching_gas_model")) if r.get("batching") else None),
    "throughput": lambda r: _throughput_body(r["throughput"]) if r.get("throughput") else None,
    "estimates": lambda r: _estimates_body(r["estimates"]) if r.get("estimates") else None,
}
_BLOCK = re.compile(r"(<!-- bench:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)(<!-- /bench:(?P=name) -->)", re.S)


def update_readme(results: dict, readme: str | os.PathLike) -> list[str]:
    """Rewrite each marked block of `readme` from `results`; returns the names of the blocks rewritten.
    Raises ValueError for a block name with no generator (a typo would otherwise go stale silently)."""
    readme = Path(readme)
    text = readme.read_text()
    done = []

    def fill(m: re.Match) -> str:
        name = m["name"]
        if name not in README_BLOCKS:
            raise ValueError(f"{readme}: unknown benchmark block {name!r}; known: {', '.join(README_BLOCKS)}")
        lines = README_BLOCKS[name](results)
        if lines is None:
            return m[0]
        done.append(name)
        when = (results.get("measured_at") or {}).get(name, "")
        stamp = f"<!-- generated from bench/results.json ({name}, measured {when}) by `make bench-report` -->\n"
        return m[1] + stamp + "\n".join(lines).rstrip("\n") + "\n" + m[4]

    new = _BLOCK.sub(fill, text)
    if new != text:
        write_text_atomic(readme, new)
    return done

"""drift.png: per-feature PSI bars with the threshold line, and the most shifted output's bin shares against
the profile's. matplotlib (the `report` extra) is imported here only, with the Agg backend."""

from __future__ import annotations

import logging
from pathlib import Path

from ..artifacts import write_with

log = logging.getLogger(__name__)


def write_plot(path: Path, data: dict) -> Path | None:
    """Write the plot atomically; None (and a log line) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed (pip install 'zkinfer[report]'): no %s", path.name)
        return None
    t = data["thresholds"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    inputs = data["inputs"]
    if inputs:
        names = [f["name"] for f in inputs]
        values = [f["psi"] for f in inputs]
        colors = ["tab:red" if f["crossed"] else "tab:blue" for f in inputs]
        ax.bar(range(len(values)), values, color=colors)
        ax.set_xticks(range(len(values)))
        ax.set_xticklabels(names, rotation=90 if len(names) > 12 else 45, fontsize=7 if len(names) > 24 else 9)
    ax.axhline(t["psi_max"], color="black", linestyle="--", linewidth=1, label=f"threshold {t['psi_max']:g}")
    ax.set_ylabel("PSI vs the data profile")
    ax.set_title(f"input features ({data['rows']['proved']} proven rows)")
    ax.legend(loc="upper right")

    ax = axes[1]
    outputs = data["outputs"]
    if outputs:
        o = max(outputs, key=lambda o: o["psi"])
        idx = list(range(len(o["expected_shares"])))
        ax.bar([i - 0.2 for i in idx], o["expected_shares"], width=0.4, label="profile (calibration)", color="tab:gray")
        ax.bar([i + 0.2 for i in idx], o["observed_shares"], width=0.4, label="proven", color="tab:orange")
        ax.set_xlabel("profile quantile bin")
        ax.set_ylabel("share of rows")
        ax.set_title(f"output {o['name']}: PSI {o['psi']:.3f} (threshold {t['output_psi_max']:g})")
        ax.legend(loc="upper right")
    else:
        ax.text(0.5, 0.5, data.get("outputs_note") or "no outputs", ha="center", va="center", wrap=True)
        ax.set_axis_off()
    fig.suptitle(f"{data['circuit']['name']}: verdict {data['verdict']}")
    fig.tight_layout()
    try:
        write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    finally:
        plt.close(fig)
    return path

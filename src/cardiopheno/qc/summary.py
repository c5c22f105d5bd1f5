"""QC summary figure: failures per check, and LV vs RV stroke volume coloured by QC outcome."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from cardiopheno.io.atomic import atomic_path  # noqa: E402
from cardiopheno.qc.checks import ALL_CHECKS  # noqa: E402


def draw_summary(qc: pd.DataFrame, pheno: pd.DataFrame | None, path: str | os.PathLike) -> None:
    checks = [c for c in ALL_CHECKS if c in qc.columns]
    failed = [int((qc[c] == False).sum()) for c in checks]  # noqa: E712 (nullable booleans)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    ax = axes[0]
    ax.barh(checks, failed, color="#d95f02")
    ax.invert_yaxis()
    n, n_pass = len(qc), int(qc["qc_pass"].sum())
    ax.set_xlabel("subjects failing the check")
    ax.set_title(f"QC: {n_pass} of {n} subjects pass ({100 * n_pass / max(n, 1):.1f}%)")
    for y, v in enumerate(failed):
        ax.text(v, y, f" {v}", va="center", fontsize=8)
    ax = axes[1]
    if pheno is not None and {"LVSV", "RVSV"} <= set(pheno.columns):
        df = pheno.merge(qc[["eid", "qc_pass"]], on="eid", how="left")
        for ok, colour, label in ((True, "#1b9e77", "QC pass"), (False, "#d95f02", "QC fail")):
            sub = df[df["qc_pass"].fillna(False).astype(bool) == ok]
            ax.scatter(sub["LVSV"], sub["RVSV"], s=10, c=colour, label=f"{label} (n={len(sub)})")
        lim = [0, max(df[["LVSV", "RVSV"]].max().max(skipna=True) * 1.05, 1)]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set_xlabel("LVSV (mL)")
        ax.set_ylabel("RVSV (mL)")
        ax.set_title("stroke volume agreement")
        ax.legend(fontsize=8)
    else:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)

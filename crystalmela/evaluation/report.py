"""Write an evaluation as ``report.json`` (for other tools), ``report.md`` (for people) and PNGs:
confusion matrices as in the paper's Fig. 7, per-class F1 bars and the ensemble's reliability diagram.

``report.json`` always has ``{"ensemble": {accuracy, top2_accuracy, balanced_accuracy, f1_weighted,
confusion_matrix, ...}, "per_model": {NAME: same keys}, "n", "classes"}``; cross-validation adds the
``*_std`` over folds and ``per_fold``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from crystalmela.plugin_api.systems import CRYSTAL_SYSTEMS

SHORT = [c[:5] for c in CRYSTAL_SYSTEMS]
COLUMNS = (("accuracy", "top-1"), ("top2_accuracy", "top-2"), ("balanced_accuracy", "balanced"),
           ("f1_weighted", "F1 weighted"), ("ece", "ECE"))


def cell(m: dict, key: str) -> str:
    v = m.get(key)
    if v is None:
        return "—"
    sd = m.get(key + "_std")
    return f"{v:.3f} ({sd:.3f})" if sd is not None and m.get("folds", 1) > 1 else f"{v:.3f}"


def markdown(report: dict, figures: list[str] = ()) -> str:
    cv = report.get("mode") == "cross-validation"
    lines = [f"# Evaluation: {'%d-fold cross-validation' % report['folds'] if cv else 'labelled patterns'}",
             "",
             f"- data: `{report.get('data', '')}`" + (f", labels `{report['labels']}`" if "labels" in report else ""),
             f"- models trained on data set: **{report['dataset']}**; patterns scored: {report['n']}",
             "- patterns per class: " + ", ".join(f"{c} {n}" for c, n in zip(CRYSTAL_SYSTEMS, report["per_class_counts"])),
             ""]
    if cv:
        lines += ["Fold means, standard deviation over folds in parentheses (as in the paper's Table 1).", ""]
    lines += ["| model | " + " | ".join(t for _, t in COLUMNS) + " |",
              "|---|" + "---|" * len(COLUMNS)]
    rows = [(m, v) for m, v in report["per_model"].items()] + [("**ensemble**", report["ensemble"])]
    rows += [(f"dummy: {b}", v) for b, v in report.get("baselines", {}).items()]
    for name, m in rows:
        lines.append(f"| {name} | " + " | ".join(cell(m, k) for k, _ in COLUMNS) + " |")
    lines += ["", "## Per class (ensemble)", "", "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for c, v in report["ensemble"].get("per_class", {}).items():
        lines.append(f"| {c} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |")
    for name, m in [("ensemble", report["ensemble"]), *report["per_model"].items()]:
        lines += ["", f"## Confusion matrix: {name}", "", "rows: true class; columns: predicted", "",
                  "| true \\ predicted | " + " | ".join(SHORT) + " |", "|---|" + "---|" * 7]
        for c, row in zip(SHORT, m["confusion_matrix"]):
            lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + " |")
    rel = report.get("reliability")
    if rel:
        lines += ["", f"## Calibration (ensemble)", "", f"Expected calibration error: {rel['ece']:.3f} "
                  "(10 equal-width confidence bins).", ""]
    if report.get("failed"):
        lines += ["", f"## Not scored ({len(report['failed'])})", ""]
        lines += [f"- `{f['file']}`: {f['error']}" for f in report["failed"]]
    if figures:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def _figures(report: dict, out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [*report["per_model"], "ensemble"]
    mats = [report["per_model"].get(n, report["ensemble"])["confusion_matrix"] for n in names]
    files = []
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4.2), squeeze=False)
    for ax, name, cm in zip(axes[0], names, mats):
        cm = np.asarray(cm, dtype=float)
        frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
        for i in range(7):
            for j in range(7):
                if cm[i, j]:
                    ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                            color="white" if frac[i, j] > 0.5 else "black")
        ax.set_xticks(range(7), SHORT, rotation=45, fontsize=8)
        ax.set_yticks(range(7), SHORT, fontsize=8)
        ax.set_title(name)
        ax.set_xlabel("predicted")
    axes[0][0].set_ylabel("true")
    fig.tight_layout()
    fig.savefig(out / "confusion_matrices.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    files.append("confusion_matrices.png")

    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        m = report["per_model"].get(name, report["ensemble"])
        f1 = [m["per_class"][c]["f1"] for c in CRYSTAL_SYSTEMS] if "per_class" in m else [0] * 7
        ax.bar(np.arange(7) + (k - (len(names) - 1) / 2) * width, f1, width, label=name)
    ax.set_xticks(range(7), CRYSTAL_SYSTEMS, fontsize=8)
    ax.set_ylabel("F1")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "per_class_f1.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    files.append("per_class_f1.png")

    rel = report.get("reliability")
    if rel:
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
        edges = np.asarray(rel["bin_edges"])
        centres = (edges[:-1] + edges[1:]) / 2
        acc = np.array([np.nan if a is None else a for a in rel["accuracy"]])
        ax.bar(centres, np.nan_to_num(acc), width=edges[1] - edges[0], edgecolor="k", alpha=0.7,
               label="accuracy")
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.set_xlabel("ensemble top-1 probability")
        ax.set_ylabel("accuracy")
        ax.set_title(f"reliability (ECE {rel['ece']:.3f})")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "reliability.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        files.append("reliability.png")
    return files


def write_report(report: dict, out: str | Path) -> list[Path]:
    """Write report.json, the figures and report.md into ``out``; returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    figures = _figures(report, out)
    (out / "report.md").write_text(markdown(report, figures))
    return [out / "report.json", out / "report.md", *(out / f for f in figures)]

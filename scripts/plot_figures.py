#!/usr/bin/python3
"""Draws the paper's Figs. 1-4 from the gathered CSVs of the figure sweeps (sweeps/fig*.toml).

usage: plot_figures.py [--runs DIR] [--fig1 ROOT] [--fig2 ROOT] [--fig3 ROOT] [--fig4 ROOT]
                       [--out DIR] [--require fig1,fig2,...]

Each figure is read from <ROOT>/gathered.csv, the file `tools/icl_sweep.py gather` writes
(docs/sweeps.md §5: one row per cell x metrics.csv row, the axis values and `selected` as
columns). ROOT is --figN, else --runs/figN (--runs: default `runs`, the driver's default roots).
Figures whose gathered.csv is absent are skipped (--require names those that must be there).
Writes fig1.png ... fig4.png to --out (default: --runs).

* fig1: SPD/d and ILWD/d to OLS per number of examples (95% CI bands), and the paper's view:
  every algorithm's SPD/d and ILWD/d to the Transformer, on a log scale (no bands).
* fig2: the table of MSPD/d of (algorithm, Transformer) against sigma^2/tau^2 (a column per cell
  of the zip), each column's minimum in red.
* fig3: MSPD/d of (algorithm, Transformer) per depth over the selected cells (the sweep's model
  selection); with several seeds the mean over the seeds and +- 1 s.d. across them, with one the
  cell's 95% CI.
* fig4: held-out 1 - R^2 per layer (the mean over the probed n, then over the seeds), per target
  (one panel each), read-out and model (main: w ~ N(0, tau^2 I); control: the fixed w).

The dimension d (for the /d normalisation) is the gathered.csv column model.d if the sweep has it
as an axis, else the setting in <ROOT>/cells/<cell>/config.json, else the figure sweep's d (8 for
Figs. 1-3, 4 for Fig. 4, with a note). Debian's python3 with numpy and matplotlib (Agg backend).
docs/reproduction.md shows the results.
"""
import argparse
import csv
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401
import numpy as np  # noqa: E402

PROG = "plot_figures.py"
FIGURES = ("fig1", "fig2", "fig3", "fig4")
DEFAULT_D = {"fig1": 8, "fig2": 8, "fig3": 8, "fig4": 4}
TRANSFORMER = "Transformer"


class PlotError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Reading a gathered.csv


class Gathered:
    """The rows of one figure's gathered.csv (only the selected ones), with d."""

    def __init__(self, name, root):
        self.name, self.root = name, root
        self.path = os.path.join(root, "gathered.csv")
        with open(self.path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        need = ["cell", "run.seed", "selected", "metric", "a", "b", "layer", "prefix", "value",
                "ci95"]
        if not rows:
            raise PlotError("%s: no rows (gather the sweep's cells first)" % self.path)
        missing = [k for k in need if k not in rows[0]]
        if missing:
            raise PlotError("%s: not a gathered.csv of icl_sweep.py: no column %s"
                            % (self.path, ", ".join(missing)))
        self.rows = [r for r in rows if r["selected"] == "1"]
        if not self.rows:
            raise PlotError("%s: no row has selected = 1" % self.path)
        self.d = self._dimension(name)

    def _dimension(self, name):
        if "model.d" in self.rows[0]:
            return int(self.rows[0]["model.d"])
        cfg = os.path.join(self.root, "cells", self.rows[0]["cell"], "config.json")
        try:
            with open(cfg, encoding="utf-8") as f:
                return int(json.load(f)["settings"]["model.d"])
        except (OSError, ValueError, KeyError, TypeError):
            print("%s: %s: model.d is neither a column nor readable from %s; assuming d = %d "
                  "(sweeps/%s.toml)" % (PROG, self.path, cfg, DEFAULT_D[name], name))
            return DEFAULT_D[name]

    def metric(self, metric):
        out = [r for r in self.rows if r["metric"] == metric]
        if not out:
            raise PlotError("%s: no rows with metric %r (is it the gathered.csv of sweeps/%s.toml?)"
                            % (self.path, metric, self.name))
        return out

    def column(self, key):
        if key not in self.rows[0]:
            raise PlotError("%s: no column %r (the sweep's axes: %s)" % (
                self.path, key, ", ".join(k for k in self.rows[0]
                                          if k not in ("cell", "run.seed", "selected", "metric",
                                                       "a", "b", "layer", "prefix", "value",
                                                       "ci95"))))
        return key


def num(s):
    return float(s) if s not in ("", None) else math.nan


def other(row, name):
    """The other member of the row's pair (a, b) when `name` is one of them, else None."""
    if row["a"] == name:
        return row["b"]
    if row["b"] == name:
        return row["a"]
    return None


def ordered(values):
    out = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def summary(vals, cis):
    """(mean, error bar): over seeds, the mean and the s.d. across them; one value: its CI."""
    vals = np.asarray(vals, dtype=float)
    if len(vals) == 1:
        return float(vals[0]), float(cis[0]) if not math.isnan(cis[0]) else 0.0
    return float(np.mean(vals)), float(np.std(vals, ddof=1))


# ---------------------------------------------------------------------------------------------
# The figures


def fig1(g, out):
    d = g.d
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    for col, metric, label in ((0, "spd", "SPD/d"), (1, "ilwd", "ILWD/d")):
        rows = g.metric(metric)
        for row_i, ref, log in ((0, "OLS", False), (1, TRANSFORMER, True)):
            ax = axes[row_i][col]
            names = ordered(o for o in (other(r, ref) for r in rows) if o is not None)
            if not names:
                raise PlotError("%s: no %s rows with %s" % (g.path, metric, ref))
            for name in names:
                pts = {}
                for r in rows:
                    if other(r, ref) == name and r["prefix"] != "" and int(r["prefix"]) >= 1:
                        pts.setdefault(int(r["prefix"]), []).append((num(r["value"]), num(r["ci95"])))
                if not pts:
                    continue
                n = sorted(pts)
                s = [summary([v for v, _ in pts[k]], [c for _, c in pts[k]]) for k in n]
                m = np.array([a for a, _ in s]) / d
                c = np.array([b for _, b in s]) / d
                hi = name in (TRANSFORMER, "OLS")
                ax.plot(n, m, marker="o", ms=2.5, label=name, lw=2.5 if hi else 1.2)
                if not log:  # on the log panels the bands (often down to 0) would hide the lines
                    ax.fill_between(n, m - c, m + c, alpha=0.15)
            ax.axvline(d, color="grey", lw=0.8, ls=":")
            ax.set_xlabel("number of in-context examples (dotted: n = d)")
            ax.set_ylabel("%s to %s%s" % (label, "the " if ref == TRANSFORMER else "", ref))
            if log:
                ax.set_yscale("log")
            else:
                ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    axes[0][0].set_title("to OLS")
    axes[1][0].set_title("the paper's view: each algorithm to the Transformer (log)")
    fig.suptitle("Fig. 1: trained transformer vs. learning algorithms (noiseless, d = %d)" % d)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def fig2(g, out):
    d = g.d
    sig, tau = g.column("run.task.noise_std"), g.column("run.task.w_std")
    rows = [r for r in g.metric("mspd") if other(r, TRANSFORMER) is not None]
    if not rows:
        raise PlotError("%s: no mspd rows with the Transformer" % g.path)
    cols = sorted(ordered((float(r[sig]), float(r[tau])) for r in rows),
                  key=lambda st: (st[0] ** 2 / st[1] ** 2, st))
    preds = ordered(other(r, TRANSFORMER) for r in rows)
    grid = np.full((len(preds), len(cols)), np.nan)
    for i, p in enumerate(preds):
        for j, (s, t) in enumerate(cols):
            v = [num(r["value"]) for r in rows if other(r, TRANSFORMER) == p
                 and (float(r[sig]), float(r[tau])) == (s, t)]
            if v:
                grid[i, j] = np.mean(v) / d
    fig, ax = plt.subplots(figsize=(1.6 * len(cols) + 4, 0.5 * len(preds) + 2.5))
    im = ax.imshow(grid, cmap="viridis_r", aspect="auto")
    for j in range(len(cols)):
        best = int(np.nanargmin(grid[:, j])) if not np.all(np.isnan(grid[:, j])) else -1
        for i in range(len(preds)):
            ax.text(j, i, "%.2e" % grid[i, j], ha="center", va="center", fontsize=7,
                    color="red" if i == best else "white",
                    fontweight="bold" if i == best else "normal")
    ax.set_xticks(range(len(cols)), ["%.3g\n(σ=%g, τ=%g)" % (s * s / (t * t), s, t)
                                     for s, t in cols])
    ax.set_yticks(range(len(preds)), ["(%s, ICL)" % p for p in preds])
    ax.set_xlabel("σ² / τ²")
    fig.colorbar(im, label="MSPD/d")
    ax.set_title("Fig. 2: MSPD/d of (algorithm, transformer), d = %d; red = column minimum" % d)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def fig3(g, out):
    d = g.d
    L = g.column("model.layers")
    rows = [r for r in g.metric("mspd") if other(r, TRANSFORMER) is not None]
    if not rows:
        raise PlotError("%s: no mspd rows with the Transformer" % g.path)
    preds = ordered(other(r, TRANSFORMER) for r in rows)
    seeds = len(ordered(r["run.seed"] for r in rows))
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for p in preds:
        by_l = {}
        for r in rows:
            if other(r, TRANSFORMER) == p:
                by_l.setdefault(int(r[L]), []).append((num(r["value"]), num(r["ci95"])))
        ls = sorted(by_l)
        s = [summary([v for v, _ in by_l[k]], [c for _, c in by_l[k]]) for k in ls]
        ax.errorbar(ls, [m / d for m, _ in s], yerr=[e / d for _, e in s], marker="o", ms=4,
                    capsize=2, label=p)
    depths = sorted({int(r[L]) for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(v) for v in depths])
    ax.minorticks_off()
    ax.set_xlabel("layers (the selected cells of each depth)")
    ax.set_ylabel("MSPD/d to the transformer (prefixes 1..d-1)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    err = "mean ± s.d. over %d seeds" % seeds if seeds > 1 else "95% CI over contexts"
    ax.set_title("Fig. 3a: algorithmic phases with depth (noiseless, d = %d; %s)" % (d, err),
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def fig4(g, out):
    wstd, wmean = g.column("run.task.w_std"), g.column("run.task.w_mean")
    rows = g.metric("probe_r2")

    def model(r):
        if float(r[wstd]) > 0:
            return "main"
        return "control (w = %g)" % float(r[wmean])

    targets = ordered(r["a"] for r in rows)
    fig, axes = plt.subplots(1, len(targets), figsize=(6.5 * len(targets), 4.8), squeeze=False)
    for ax, t in zip(axes[0], targets):
        for m, readout in ordered((model(r), r["b"]) for r in rows if r["a"] == t):
            # (seed, layer) -> 1 - R^2 per n; the mean over n, then over the seeds
            per = {}
            for r in rows:
                if r["a"] == t and r["b"] == readout and model(r) == m:
                    per.setdefault((r["run.seed"], int(r["layer"])), []).append(1 - num(r["value"]))
            layers = sorted({k[1] for k in per})
            y = [np.mean([np.mean(v) for (s, l), v in per.items() if l == layer])
                 for layer in layers]
            ax.plot(layers, y, marker="o", ms=3, ls="--" if m != "main" else "-",
                    label="%s, %s" % (m, readout))
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_xlabel("layer (0 = embedding)")
        ax.set_ylabel("held-out 1 - R² (mean over n)")
        ax.set_title({"xty": "XᵀY", "w_ols": "w_OLS"}.get(t, t))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Fig. 4: probing the hidden states (d = %d)" % g.d)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


DRAW = {"fig1": fig1, "fig2": fig2, "fig3": fig3, "fig4": fig4}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs", help="folder of the roots runs/fig1 ... (default: runs)")
    for name in FIGURES:
        ap.add_argument("--" + name, metavar="ROOT", help="the root of sweeps/%s.toml (default: "
                        "RUNS/%s)" % (name, name))
    ap.add_argument("--out", help="folder for the PNGs (default: --runs)")
    ap.add_argument("--require", default="", help="comma-separated figures that must be drawn")
    a = ap.parse_args()
    required = [s for s in a.require.split(",") if s]
    bad = [s for s in required if s not in FIGURES]
    if bad:
        ap.error("--require: unknown figure %s (expected %s)" % (bad[0], ", ".join(FIGURES)))
    out = a.out or a.runs
    made = 0
    for name in FIGURES:
        root = getattr(a, name) or os.path.join(a.runs, name)
        src = os.path.join(root, "gathered.csv")
        if not os.path.exists(src):
            if name in required:
                sys.exit("%s: %s is missing (run and gather sweeps/%s.toml first)"
                         % (PROG, src, name))
            print("%s: no %s, skipped" % (PROG, src))
            continue
        os.makedirs(out, exist_ok=True)
        dst = os.path.join(out, name + ".png")
        try:
            DRAW[name](Gathered(name, root), dst)
        except PlotError as e:
            sys.exit("%s: %s" % (PROG, e))
        if not os.path.exists(dst) or os.path.getsize(dst) == 0:
            sys.exit("%s: wrote an empty %s" % (PROG, dst))
        print("wrote", dst)
        made += 1
    if made == 0:
        sys.exit("%s: no gathered.csv found (looked under %s)" % (PROG, a.runs))


if __name__ == "__main__":
    main()

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
  cell's 95% CI; a second panel has the means on a log scale.
* fig4: held-out 1 - R^2 per layer (the mean over the probed n, then over the seeds), per target
  (one panel each), read-out and model (main: w ~ N(0, tau^2 I); control: the fixed w).
* fig8 (and fig8_cluster, the same experiment at a cluster's scale): App. H's smallest L, H and M
  with SPD(OLS, model) < SPD(Ridge(0.1), model) against d, the other two factors at the base point
  the sweep varies them around (figdata.fig8_base).
(fig2_ablation, fig3_width, fig3b, fig4_ablation and fig4_seeds are drawn as fig2, fig3 and fig4.)

The dimension d (for the /d normalisation) is the gathered.csv column model.d if the sweep has it
as an axis, else the setting in <ROOT>/cells/<cell>/config.json, else the figure sweep's d (8 for
Figs. 1-3, 4 for Fig. 4, with a note). Debian's python3 with numpy and matplotlib (Agg backend).
docs/reproduction.md shows the results.
"""
import argparse
import copy
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

import figdata  # noqa: E402  (scripts/figdata.py: the numbers shared with reproduction.py)

PROG = "plot_figures.py"
FIGURES = ("fig1", "fig2", "fig2_ablation", "fig3", "fig3_width", "fig3b", "fig4", "fig4_ablation",
           "fig4_seeds", "fig8", "fig8_cluster")
DEFAULT_D = {"fig1": 8, "fig2": 8, "fig2_ablation": 8, "fig3": 8, "fig3_width": 8, "fig3b": 16,
             "fig4": 4, "fig4_ablation": 4, "fig4_seeds": 4, "fig8": 8, "fig8_cluster": 8}
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
        self.all_rows = rows
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
    # one colour per algorithm in all four panels (each panel leaves its reference out)
    everyone = ordered(n for m in ("spd", "ilwd") for r in g.metric(m) for n in (r["a"], r["b"]))
    colour = {n: "C%d" % (i % 10) for i, n in enumerate(everyone)}
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
                ax.plot(n, m, marker="o", ms=2.5, label=name, lw=2.5 if hi else 1.2,
                        color=colour[name])
                if not log:  # on the log panels the bands (often down to 0) would hide the lines
                    ax.fill_between(n, m - c, m + c, alpha=0.15, color=colour[name])
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


def ridge_grid(g, rows):
    """Fig. 2's table: (predictors, columns (sigma, tau) by sigma^2/tau^2, MSPD/d mean over seeds)."""
    sig, tau = g.column("run.task.noise_std"), g.column("run.task.w_std")
    cols = sorted(ordered((float(r[sig]), float(r[tau])) for r in rows), key=figdata.noise_order)
    preds = ordered(other(r, TRANSFORMER) for r in rows)
    grid = np.full((len(preds), len(cols)), np.nan)
    for i, p in enumerate(preds):
        for j, (s, t) in enumerate(cols):
            v = [num(r["value"]) for r in rows if other(r, TRANSFORMER) == p
                 and (float(r[sig]), float(r[tau])) == (s, t)]
            if v:
                grid[i, j] = np.mean(v) / g.d
    return preds, cols, grid


def draw_ridge_grid(ax, preds, cols, grid):
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
    return im


def mspd_rows(g):
    rows = [r for r in g.metric("mspd") if other(r, TRANSFORMER) is not None]
    if not rows:
        raise PlotError("%s: no mspd rows with the Transformer" % g.path)
    return rows


def fig2(g, out):
    preds, cols, grid = ridge_grid(g, mspd_rows(g))
    seeds = len(ordered(r["run.seed"] for r in g.rows))
    fig, ax = plt.subplots(figsize=(1.6 * len(cols) + 4, 0.5 * len(preds) + 2.5))
    im = draw_ridge_grid(ax, preds, cols, grid)
    fig.colorbar(im, label="MSPD/d")
    ax.set_title("Fig. 2: MSPD/d of (algorithm, transformer), d = %d, mean over %d seed%s; red = "
                 "column minimum" % (g.d, seeds, "s" if seeds > 1 else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


ABLATION_KEYS = ("model.layers", "run.steps", "model.hidden")


def fig2_ablation(g, out):
    """One panel per change on the selection seeds (every change, selected or not), then, once the
    staged selection has run other seeds, the selected change of every column over all seeds."""
    stage = [str(x) for x in figdata.stage_seeds(g.name)]
    rows = [r for r in g.all_rows if r["metric"] == "mspd" and other(r, TRANSFORMER) is not None
            and (not stage or r["run.seed"] in stage)]
    if not rows:
        raise PlotError("%s: no mspd rows with the Transformer" % g.path)
    keys = [g.column(k) for k in ABLATION_KEYS]
    variants = ordered(tuple(r[k] for k in keys) for r in rows)
    panels = [(v, [r for r in rows if tuple(r[k] for k in keys) == v]) for v in variants]
    chosen = mspd_rows(g)
    if stage and any(r["run.seed"] not in stage for r in chosen):
        panels.append((None, chosen))
    fig, axes = plt.subplots(len(panels), 1, squeeze=False,
                             figsize=(12, (0.5 * 9 + 2) * len(panels)))
    on = " (seed %s)" % ", ".join(stage) if stage else ""
    for ax, (v, sub) in zip(axes[:, 0], panels):
        preds, cols, grid = ridge_grid(g, sub)
        im = draw_ridge_grid(ax, preds, cols, grid)
        fig.colorbar(im, ax=ax, label="MSPD/d")
        if v is None:
            sig, tau = g.column("run.task.noise_std"), g.column("run.task.w_std")
            per_col = [len(ordered(r["run.seed"] for r in sub
                                   if (float(r[sig]), float(r[tau])) == c)) for c in cols]
            seeds = ("%d seeds" % per_col[0] if len(set(per_col)) == 1 else
                     "the seeds run so far (%s by column)" % ", ".join(map(str, per_col)))
            ax.set_title("per column its selected change (lowest held-out loss%s), mean over %s; "
                         "red = column minimum" % (on, seeds), fontsize=9)
        else:
            ax.set_title("L = %s, %s steps, H = %s%s; red = column minimum" % (v + (on,)),
                         fontsize=9)
    fig.suptitle("Fig. 2 ablations: MSPD/d of (algorithm, transformer), d = %d" % g.d)
    fig.tight_layout(rect=(0, 0, 1, 0.985))  # the suptitle above the first panel's title
    fig.savefig(out, dpi=110)
    plt.close(fig)


def panel(g, out, key, xlabel, title):
    """MSPD/d of (algorithm, Transformer) against one axis (the selected cells per value)."""
    d = g.d
    X = g.column(key)
    rows = [r for r in g.metric("mspd") if other(r, TRANSFORMER) is not None]
    if not rows:
        raise PlotError("%s: no mspd rows with the Transformer" % g.path)
    preds = ordered(other(r, TRANSFORMER) for r in rows)
    seeds = len(ordered(r["run.seed"] for r in rows))
    # Left: the paper's linear axis. Right: the same means on a log axis, where the deep models'
    # gaps (OLS against Ridge(0.1) at 5e-3, two orders below the shallow ones) can be read; no bars
    # there, since mean - s.d. can reach 0.
    fig, (ax, axl) = plt.subplots(1, 2, figsize=(13, 4.8))
    ticks = sorted({int(r[X]) for r in rows})
    for p in preds:
        by_x = {}
        for r in rows:
            if other(r, TRANSFORMER) == p:
                by_x.setdefault(int(r[X]), []).append((num(r["value"]), num(r["ci95"])))
        xs = sorted(by_x)
        s = [summary([v for v, _ in by_x[k]], [c for _, c in by_x[k]]) for k in xs]
        # the null predictor (0 everywhere; Fig. 3's legend since issue 18) is a control, drawn
        # dashed: an algorithm below it is matched by more than the smallness of the predictions
        style = dict(ls="--", color="0.3", label="Zero (null control)") if p == "Zero" else \
            dict(label=p)
        line = ax.errorbar(xs, [m / d for m, _ in s], yerr=[e / d for _, e in s], marker="o", ms=4,
                           capsize=2, **style)
        style["color"] = line[0].get_color()
        axl.plot(xs, [m / d for m, _ in s], marker="o", ms=4, **style)
    for a in (ax, axl):
        a.set_xscale("log", base=2)
        a.set_xticks(ticks, [str(v) for v in ticks])
        a.minorticks_off()
        a.set_xlabel(xlabel)
        a.grid(alpha=0.3)
    ax.set_ylabel("MSPD/d to the transformer (prefixes 1..d-1)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    axl.set_yscale("log")
    axl.set_ylabel("MSPD/d (log scale; means, no bars)")
    err = "mean ± s.d. over %d seeds" % seeds if seeds > 1 else "95% CI over contexts"
    ax.set_title("%s (noiseless, d = %d; %s)" % (title, d, err), fontsize=9)
    axl.set_title("the same on a log scale", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def fig3(g, out):
    panel(g, out, "model.layers", "layers (the selected cells of each depth)",
          "Fig. 3a: algorithmic phases with depth")


def fig3b(g, out):
    panel(g, out, "model.layers", "layers (the selected cells of each depth)",
          "Fig. 3b: algorithmic phases with depth")


def fig3_width(g, out):
    panel(g, out, "model.hidden", "hidden size H", "Fig. 3a, width panel: phases with width")


TARGET_NAMES = figdata.TARGET_NAMES


def probe_axes(ax, ylabel, title):
    """The layer axis, labels and grid of a probe panel (fig4, fig4_ablation)."""
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("layer (0 = embedding)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def fig4(g, out):
    curves = figdata.probe_curves(figdata.Root(g.root), g.rows)
    if not curves:
        raise PlotError("%s: no probe_r2 rows" % g.path)
    targets = ordered(t for _, t, _ in curves)
    fig, axes = plt.subplots(1, len(targets), figsize=(6.5 * len(targets), 4.8), squeeze=False)
    for ax, t in zip(axes[0], targets):
        for (m, tt, readout), c in sorted(curves.items()):
            if tt != t:
                continue
            layers = sorted(c)
            ax.plot(layers, [c[x] for x in layers], marker="o", ms=3,
                    ls="--" if m.startswith("control") else "-", label="%s, %s" % (m, readout))
        probe_axes(ax, "held-out 1 - R² (mean over n)", TARGET_NAMES.get(t, t))
    fig.suptitle("Fig. 4: probing the hidden states (d = %d)" % g.d)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    heatmaps(g, out.replace(".png", "_attention.png"))


def heatmaps(g, out):
    """The probes' attention over token positions (target after n exemplars x position), as the
    paper's Fig. 4 heatmaps: the MLP probes of the main model (the first selected cell whose w is
    drawn), at the layer where each target is best decoded; from the cells' probe_attention.csv."""
    main = [r for r in g.rows if r["metric"] == "probe_r2" and r["b"] == "mlp"
            and ("run.task.w_std" not in r or float(r["run.task.w_std"]) > 0)]
    if not main:
        return
    cell = main[0]["cell"]
    path = os.path.join(g.root, "cells", cell, "probe_attention.csv")
    if not os.path.exists(path):
        print("%s: no %s, no heatmaps" % (PROG, path))
        return
    with open(path, newline="", encoding="utf-8") as f:
        att = [r for r in csv.DictReader(f) if r["readout"] == "mlp"]
    targets = ordered(r["target"] for r in att)
    fig, axes = plt.subplots(1, len(targets), figsize=(7 * len(targets), 4.2), squeeze=False)
    for ax, t in zip(axes[0], targets):
        r2 = {}
        for r in main:
            if r["cell"] == cell and r["a"] == t:
                r2.setdefault(int(r["layer"]), []).append(num(r["value"]))
        layer = max(r2, key=lambda x: np.mean(r2[x]))
        rows = [r for r in att if r["target"] == t and int(r["layer"]) == layer]
        ns = sorted({int(r["n"]) for r in rows})
        width = max(int(r["position"]) for r in rows) + 1
        grid = np.full((len(ns), width), np.nan)
        for r in rows:
            grid[ns.index(int(r["n"])), int(r["position"])] = float(r["weight"])
        im = ax.imshow(grid, aspect="auto", cmap="magma", interpolation="nearest")
        ax.set_yticks(range(len(ns)), [str(n) for n in ns])
        ax.set_ylabel("target after n exemplars")
        ax.set_xticks(range(0, width, 2), ["x%d" % (k // 2 + 1) for k in range(0, width, 2)],
                      fontsize=6)
        ax.set_xlabel("token position (x_1, y_1, x_2, ...; ticks at the x tokens)")
        ax.set_title("%s, MLP probe, layer %d (its best mean R²)" % (
            TARGET_NAMES.get(t, t), layer), fontsize=9)
        fig.colorbar(im, ax=ax, label="attention weight")
    fig.suptitle("Fig. 4 heatmaps: where the probes read each target from (cell %s)" % cell)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def fig4_ablation(g, out, title="Fig. 4 ablations: probe size, standardised targets, probe data, "
                                 "depth"):
    """One panel per (depth, target): the MLP read-out of every probe variant (the linear one is
    in the table of docs/reproduction.md), one colour per variant in every panel; with several
    seeds the mean over them, each seed's own curve thin in the same colour."""
    root = figdata.Root(g.root)
    curves = figdata.probe_curves(root, g.rows)
    seeds = ordered(r["run.seed"] for r in g.rows)
    per_seed = [figdata.probe_curves(root, [r for r in g.rows if r["run.seed"] == s])
                for s in seeds] if len(seeds) > 1 else []
    curves = {k: c for k, c in curves.items() if k[2] == "mlp"}
    if not curves:
        raise PlotError("%s: no probe_r2 rows of the MLP read-out" % g.path)
    depths = sorted({int(r["model.layers"]) for r in g.rows if r.get("model.layers")})
    targets = ordered(t for _, t, _ in curves)
    variants = ordered(m.split(", ", 1)[1] if m.startswith("L = ") else m
                       for m, _, _ in sorted(curves))
    colour = {v: "C%d" % (i % 10) for i, v in enumerate(variants)}
    fig, axes = plt.subplots(len(depths), len(targets), squeeze=False,
                             figsize=(6.5 * len(targets), 4.2 * len(depths)))
    for i, L in enumerate(depths):
        for j, t in enumerate(targets):
            ax = axes[i][j]
            for (m, tt, _), c in sorted(curves.items()):
                if tt != t or not m.startswith("L = %d," % L):
                    continue
                v = m.split(", ", 1)[1]
                layers = sorted(c)
                ax.plot(layers, [c[x] for x in layers], marker="o", ms=3, color=colour[v],
                        label=v + (" (mean of %d seeds)" % len(seeds) if per_seed else ""))
                for one in per_seed:
                    cs = one.get((m, tt, "mlp"), {})
                    ax.plot(sorted(cs), [cs[x] for x in sorted(cs)], lw=0.6, alpha=0.6,
                            color=colour[v])
            probe_axes(ax, "held-out 1 - R² (MLP probe, mean over n)",
                       "L = %d: %s" % (L, TARGET_NAMES.get(t, t)))
    fig.suptitle("%s (d = %d)" % (title, g.d))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    # the heatmaps of the deepest model under the largest probe variant (the last in cell order)
    deep = [r for r in g.rows if r.get("model.layers") == str(depths[-1])]
    if deep:
        last = deep[-1]["cell"]
        view = copy.copy(g)
        view.rows = [r for r in g.rows if r["cell"] == last]
        heatmaps(view, out.replace(".png", "_attention.png"))


def fig4_seeds(g, out):
    fig4_ablation(g, out, "Fig. 4 over %d seeds: the L = %s model, base, standardised and full "
                  "probes" % (len(ordered(r["run.seed"] for r in g.rows)),
                              ", ".join(ordered(r["model.layers"] for r in g.rows))))


def fig8(g, out):
    root = figdata.Root(g.root)
    base = figdata.fig8_base(figdata.fig8_cells(root))  # the point the factors vary around
    table = figdata.fig8_table(root, base)
    decided = figdata.fig8_decided(table)  # a partial gather: open values are not drawn
    ds = sorted(table)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    for ax, (key, label) in zip(axes, figdata.FIG8_FACTORS):
        run = [d for d in ds if decided[d, key]]  # the d at which this factor's value is final
        grid = sorted({v for d in run for v, *_ in table[d][key][1]})
        top = grid[-1] * 2 if grid else 1
        y = [table[d][key][0] if table[d][key][0] is not None else top for d in run]
        if not run:
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
        ax.step(run, y, where="mid", color="C0")
        for d, v in zip(run, y):
            reached = table[d][key][0] is not None
            ax.plot(d, v, "o" if reached else "^", color="C0", mfc="C0" if reached else "white")
        ax.set_yscale("log", base=2)
        ticks = grid + [top]
        ax.set_yticks(ticks, [str(t) for t in grid] + ["not\nreached"])
        ax.minorticks_off()
        ax.set_xticks(ds)
        ax.set_xlabel("d")
        others = ", ".join("%s = %d" % (lb, base[k]) for k, lb in figdata.FIG8_FACTORS if k != key)
        ax.set_ylabel("smallest %s" % label)
        ax.set_title("smallest %s with SPD(OLS) < SPD(Ridge(0.1)) (%s)" % (label, others),
                     fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle("App. H, Fig. 8: the smallest model closer to OLS than to Ridge(0.1), per d "
                 "(SPDs over the prefixes 1..n-1; mean over seeds)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


DRAW = {"fig1": fig1, "fig2": fig2, "fig2_ablation": fig2_ablation, "fig3": fig3,
        "fig3_width": fig3_width, "fig3b": fig3b, "fig4": fig4, "fig4_ablation": fig4_ablation,
        "fig4_seeds": fig4_seeds,
        "fig8": fig8, "fig8_cluster": fig8}  # fig8_cluster: App. H at a cluster's scale, drawn alike


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

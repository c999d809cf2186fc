#!/usr/bin/python3
"""Turns the CSVs of the figure programs (examples/fig1, fig2, fig3, fig4_probe) into PNGs.

usage: plot_figures.py --dir DIR [--out DIR] [--require fig1,fig2,fig3]

Reads DIR/fig1.csv, fig2.csv, fig3.csv, fig4.csv (those present; --require names the ones that must
be), writes fig1.png ... fig4.png to --out (default: DIR). Debian's python3-matplotlib, Agg backend.
docs/reproduction.md shows the results.
"""
import argparse
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def fig1(path, out):
    r = rows(path)
    names = []
    for x in r:
        if x["metric"] == "spd" and "OLS" in (x["a"], x["b"]):
            other = x["b"] if x["a"] == "OLS" else x["a"]
            if other not in names:
                names.append(other)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, metric, label in ((axes[0], "spd", "SPD/d"), (axes[1], "ilwd", "ILWD/d")):
        for name in names:
            pts = sorted(
                (int(x["examples"]), float(x["mean_per_dim"]), float(x["ci95_per_dim"]))
                for x in r
                if x["metric"] == metric and {x["a"], x["b"]} == {"OLS", name} and int(x["examples"]) >= 1
            )
            if not pts:
                continue
            n, m, c = zip(*pts)
            ax.plot(n, m, marker="o", ms=3, label=name, lw=2.5 if name == "Transformer" else 1.2)
            ax.fill_between(n, [a - b for a, b in zip(m, c)], [a + b for a, b in zip(m, c)], alpha=0.15)
        ax.set_xlabel("number of in-context examples")
        ax.set_ylabel(label + " to OLS")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Fig. 1: trained transformer vs. learning algorithms (noiseless, d = 8)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def fig2(path, out):
    r = rows(path)
    ratios = sorted({float(x["ratio"]) for x in r})
    preds = []
    for x in r:
        if x["predictor"] not in preds:
            preds.append(x["predictor"])
    grid = [[float("nan")] * len(ratios) for _ in preds]
    for x in r:
        grid[preds.index(x["predictor"])][ratios.index(float(x["ratio"]))] = float(x["mspd_per_dim"])
    fig, ax = plt.subplots(figsize=(7, 4))
    im = ax.imshow(grid, cmap="viridis_r")
    for j in range(len(ratios)):
        col = [grid[i][j] for i in range(len(preds))]
        best = col.index(min(col))
        for i in range(len(preds)):
            ax.text(j, i, "%.2e" % grid[i][j], ha="center", va="center", fontsize=7,
                    color="red" if i == best else "white", fontweight="bold" if i == best else "normal")
    ax.set_xticks(range(len(ratios)), ["%.3g" % v for v in ratios])
    ax.set_yticks(range(len(preds)), ["(%s, ICL)" % p for p in preds])
    ax.set_xlabel("sigma^2 / tau^2")
    fig.colorbar(im, label="MSPD/d")
    ax.set_title("Fig. 2: MSPD/d of (algorithm, transformer); red = column minimum")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def fig3(path, out):
    r = rows(path)
    preds = []
    for x in r:
        if x["predictor"] not in preds:
            preds.append(x["predictor"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for p in preds:
        pts = sorted((int(x["layers"]), float(x["mspd_per_dim"]), float(x["ci95_per_dim"])) for x in r
                     if x["predictor"] == p)
        L, m, c = zip(*pts)
        ax.errorbar(L, m, yerr=c, marker="o", ms=4, capsize=2, label=p)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("layers")
    ax.set_ylabel("MSPD/d to the transformer (prefixes 1..d-1)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Fig. 3a: algorithmic phases with depth (noiseless, d = 8)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def fig4(path, out):
    r = rows(path)
    targets = []
    for x in r:
        if x["target"] not in targets:
            targets.append(x["target"])
    fig, axes = plt.subplots(1, len(targets), figsize=(6 * len(targets), 4.5), squeeze=False)
    for ax, t in zip(axes[0], targets):
        keys = []
        for x in r:
            k = (x["model"], x["readout"])
            if x["target"] == t and k not in keys:
                keys.append(k)
        for model, readout in keys:
            pts = sorted((int(x["layer"]), float(x["one_minus_r2"])) for x in r
                         if x["target"] == t and x["model"] == model and x["readout"] == readout)
            L, m = zip(*pts)
            ax.plot(L, m, marker="o", ms=3, ls="--" if model == "control" else "-", label="%s, %s" % (model, readout))
        ax.set_xlabel("layer")
        ax.set_ylabel("held-out 1 - R² (mean over n)")
        ax.set_title(t)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Fig. 4: probing the hidden states (d = 4)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True, help="folder with fig1.csv ... fig4.csv")
    ap.add_argument("--out", help="folder for the PNGs (default: --dir)")
    ap.add_argument("--require", default="", help="comma-separated figures that must be present")
    a = ap.parse_args()
    out = a.out or a.dir
    os.makedirs(out, exist_ok=True)
    required = [s for s in a.require.split(",") if s]
    made = 0
    for name, fn in (("fig1", fig1), ("fig2", fig2), ("fig3", fig3), ("fig4", fig4)):
        src = os.path.join(a.dir, name + ".csv")
        if not os.path.exists(src):
            if name in required:
                sys.exit("plot_figures.py: %s is missing" % src)
            print("plot_figures.py: no %s, skipped" % src)
            continue
        dst = os.path.join(out, name + ".png")
        fn(src, dst)
        if os.path.getsize(dst) == 0:
            sys.exit("plot_figures.py: wrote an empty %s" % dst)
        print("wrote", dst)
        made += 1
    if made == 0:
        sys.exit("plot_figures.py: no CSV found in " + a.dir)


if __name__ == "__main__":
    main()

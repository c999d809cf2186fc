"""The figures' numbers, computed from a sweep root's gathered.csv (standard library only).

Shared by scripts/reproduction.py (the tables and verdicts of docs/reproduction.md) and
scripts/plot_figures.py (the PNGs), so that a document and its figure cannot compute a number two
ways. A root is the folder `tools/icl_sweep.py run/gather --root ROOT` used: ROOT/gathered.csv (one
row per cell x metrics.csv row, docs/sweeps.md §5), ROOT/cells/<id>/{config,status,attempts}.json.
"""
import collections
import csv
import json
import math
import os
import re
import statistics
from fractions import Fraction

TRANSFORMER = "Transformer"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GATHERED_COLUMNS = ["cell", "run.seed", "selected", "metric", "a", "b", "layer", "prefix", "value",
                    "ci95"]


class DataError(Exception):
    pass


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


def mean_sd(vals):
    """(mean, s.d. across the values; nan for one value)."""
    vals = [v for v in vals]
    if not vals:
        return math.nan, math.nan
    m = statistics.fmean(vals)
    return m, statistics.stdev(vals) if len(vals) > 1 else math.nan


class Root:
    """A sweep root: its gathered.csv rows (all, and the selected ones) and the cells' bookkeeping."""

    def __init__(self, root):
        self.root = root
        self.path = os.path.join(root, "gathered.csv")
        with open(self.path, newline="", encoding="utf-8") as f:
            self.all_rows = list(csv.DictReader(f))
        if not self.all_rows:
            raise DataError("%s: no rows" % self.path)
        missing = [k for k in GATHERED_COLUMNS if k not in self.all_rows[0]]
        if missing:
            raise DataError("%s: not a gathered.csv of icl_sweep.py: no column %s"
                            % (self.path, ", ".join(missing)))
        self.rows = [r for r in self.all_rows if r["selected"] == "1"]
        self.axes = [k for k in self.all_rows[0] if k not in GATHERED_COLUMNS]
        self.cells = ordered(r["cell"] for r in self.all_rows)
        self.seeds = ordered(r["run.seed"] for r in self.all_rows)

    def setting(self, cell, key):
        """A setting of a cell: its gathered column if it is an axis, else its config.json value."""
        for r in self.all_rows:
            if r["cell"] == cell and key in r:
                return r[key]
        with open(os.path.join(self.root, "cells", cell, "config.json"), encoding="utf-8") as f:
            return json.load(f)["settings"][key]

    def d(self):
        return int(self.setting(self.cells[0], "model.d"))

    def metric(self, metric, rows=None):
        out = [r for r in (self.rows if rows is None else rows) if r["metric"] == metric]
        if not out:
            raise DataError("%s: no rows with metric %r" % (self.path, metric))
        return out

    def _attempts(self, cell):
        """Every recorded attempt of a cell: the local executor's attempts.json and the SLURM
        executor's slurm_attempts.jsonl (one JSON object per line; an unreadable line is skipped)."""
        cdir = os.path.join(self.root, "cells", cell)
        try:
            with open(os.path.join(cdir, "attempts.json"), encoding="utf-8") as f:
                attempts = json.load(f)
        except (OSError, ValueError):
            attempts = []
        out = [a for a in attempts if isinstance(a, dict)] if isinstance(attempts, list) else []
        try:
            with open(os.path.join(cdir, "slurm_attempts.jsonl"), encoding="utf-8") as f:
                for line in f:
                    try:
                        a = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(a, dict):
                        out.append(a)
        except OSError:
            pass
        return out

    def _live_cells(self):
        """(cell, state) of every cell with a config.json that the staged selection kept."""
        cdir = os.path.join(self.root, "cells")
        for c in sorted(os.listdir(cdir)) if os.path.isdir(cdir) else []:
            if not os.path.exists(os.path.join(cdir, c, "config.json")):
                continue
            try:
                with open(os.path.join(cdir, c, "status.json"), encoding="utf-8") as f:
                    state = json.load(f).get("state")
            except (OSError, ValueError):
                state = None
            if state == "dropped":  # staged selection ([select] seeds): never to run
                continue
            yield c, state

    def bookkeeping(self):
        """(cells in the root, cells done, core-hours of the recorded attempts, hosts). Core-hours:
        each attempt's wall time x its threads (1 where an attempt does not record them)."""
        total = done = 0
        core_s = 0.0
        hosts = []
        for c, state in self._live_cells():
            total += 1
            done += state == "done"
            for a in self._attempts(c):
                try:
                    t0, t1 = iso_seconds(a["start"]), iso_seconds(a["end"])
                    core_s += max(0.0, t1 - t0) * int(a.get("threads") or 1)
                except (KeyError, TypeError, ValueError):
                    continue
                if a.get("host") and a["host"] not in hosts:
                    hosts.append(a["host"])
        return total, done, core_s / 3600.0, hosts

    def runners(self):
        """Which cell-runner builds produced the root's cells, from the runner_sha256 the executors
        record with each attempt: (the distinct SHA-256s in first-seen order, the cells whose
        attempts recorded more than one, the attempts that recorded none (older executors))."""
        shas, mixed, unrecorded = [], [], 0
        for c, _ in self._live_cells():
            mine = []
            for a in self._attempts(c):
                sha = a.get("runner_sha256")
                if not isinstance(sha, str) or not sha:
                    unrecorded += 1
                    continue
                if sha not in mine:
                    mine.append(sha)
                if sha not in shas:
                    shas.append(sha)
            if len(mine) > 1:
                mixed.append(c)
        return shas, mixed, unrecorded


def iso_seconds(s):
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def ridge_lambda(name):
    """The lambda of a legend name: "Lstsq"/"OLS" -> 0, "Ridge(1/16)" -> 1/16, else None."""
    if name in ("Lstsq", "OLS"):
        return Fraction(0)
    m = re.fullmatch(r"Ridge\(([0-9./]+)\)", name)
    if not m:
        return None
    return Fraction(m.group(1)).limit_denominator(1000)


# ---------------------------------------------------------------------------------------------
# Fig. 2: MSPD/d of (Ridge(lambda), model) per noise column


def noise_order(col):
    """Sort key of Fig. 2's columns (sigma, tau): by sigma^2/tau^2, then by the pair."""
    return (col[0] ** 2 / col[1] ** 2, col)


def ridge_columns(g, rows):
    """Fig. 2's table from the mspd rows `rows` of one model configuration:
    (predictors, columns [(sigma, tau)] by sigma^2/tau^2, {(pred, col): [MSPD/d per seed]},
    {col: {seed: best predictor}})."""
    d = g.d()
    rows = [r for r in rows if r["metric"] == "mspd" and other(r, TRANSFORMER) is not None]
    if not rows:
        raise DataError("%s: no mspd rows with the Transformer" % g.path)
    col = lambda r: (float(r["run.task.noise_std"]), float(r["run.task.w_std"]))  # noqa: E731
    cols = sorted(ordered(col(r) for r in rows), key=noise_order)
    preds = ordered(other(r, TRANSFORMER) for r in rows)
    preds.sort(key=lambda p: (ridge_lambda(p) is None, ridge_lambda(p) or 0))
    vals, per_seed = {}, {}
    for r in rows:
        p, c = other(r, TRANSFORMER), col(r)
        vals.setdefault((p, c), []).append(num(r["value"]) / d)
        per_seed.setdefault(c, {}).setdefault(r["run.seed"], {})[p] = num(r["value"]) / d
    best = {c: {s: min(v, key=v.get) for s, v in per_seed[c].items()} for c in per_seed}
    return preds, cols, vals, best


def bayes_name(preds, sigma, tau):
    """The legend predictor whose lambda is sigma^2/tau^2 (None when the grid lacks it)."""
    lam = Fraction(sigma).limit_denominator(1000) ** 2 / Fraction(tau).limit_denominator(1000) ** 2
    for p in preds:
        if ridge_lambda(p) == lam:
            return p
    return None


# ---------------------------------------------------------------------------------------------
# Figs. 3a, 3b and the width panel: MSPD/d of (algorithm, model) against one axis


def panel(g, key):
    """{x: (selected settings of the other axes, {pred: [MSPD/d per seed]})} over the selected
    rows, x the values of axis `key`."""
    d = g.d()
    rows = [r for r in g.metric("mspd") if other(r, TRANSFORMER) is not None]
    others = [k for k in g.axes if k not in (key, "run.seed")]
    out = {}
    for r in rows:
        x = int(r[key])
        sel = tuple((k, r[k]) for k in others)
        entry = out.setdefault(x, (sel, {}))
        if entry[0] != sel:
            raise DataError("%s: two selected configurations at %s = %s" % (g.path, key, x))
        entry[1].setdefault(other(r, TRANSFORMER), []).append(num(r["value"]) / d)
    return dict(sorted(out.items()))


def stage_seeds(sweep):
    """The seeds that sweeps/SWEEP.toml's [select] chooses on (staged selection; integers as the
    file has them), [] for all seeds or no such file."""
    import tomllib
    try:
        with open(os.path.join(REPO, "sweeps", sweep + ".toml"), "rb") as f:
            return list(tomllib.load(f).get("select", {}).get("seeds") or [])
    except OSError:
        return []


def open_selections(g, key, stage_seeds):
    """{x: (done, total)} for every value x of axis `key` whose selection stage is unfinished: of the
    cells of the root with `key` = x and a seed in `stage_seeds` (the sweep's [select] seeds; every
    seed when empty), fewer than all are done. The selection over the cells done so far is then
    provisional: a cell still to run may have the lower held-out loss. `key` is one axis (x an int)
    or a tuple of keys (x the tuple of their values as floats: Fig. 2's (sigma, tau) columns)."""
    keys = (key,) if isinstance(key, str) else tuple(key)
    cdir = os.path.join(g.root, "cells")
    count = {}
    for c in sorted(os.listdir(cdir)) if os.path.isdir(cdir) else []:
        try:
            with open(os.path.join(cdir, c, "config.json"), encoding="utf-8") as f:
                settings = json.load(f)["settings"]
        except (OSError, ValueError, KeyError):
            continue
        if any(k not in settings for k in keys) or (stage_seeds and
                                                    settings.get("run.seed") not in stage_seeds):
            continue
        try:
            with open(os.path.join(cdir, c, "status.json"), encoding="utf-8") as f:
                state = json.load(f).get("state")
        except (OSError, ValueError):
            state = None
        if state == "dropped":
            continue
        x = int(settings[key]) if isinstance(key, str) else tuple(float(settings[k]) for k in keys)
        done, total = count.get(x, (0, 0))
        count[x] = (done + (state == "done"), total + 1)
    return {x: dt for x, dt in sorted(count.items()) if dt[0] < dt[1]}


def family(name):
    """The algorithm family of a legend name, for the phase verdicts of Fig. 3."""
    if name in ("OLS", "Lstsq"):
        return "OLS"
    if name.startswith("Ridge"):
        return "ridge"
    if name.startswith("GD") or name.startswith("SGD"):
        return "GD"
    if name.startswith("kNN"):
        return "kNN"
    return name


# ---------------------------------------------------------------------------------------------
# App. H (Fig. 8): the smallest L, H, M closer to OLS than to Ridge(0.1)

FIG8_BASE = {"model.layers": 4, "model.hidden": 64, "model.heads": 4}  # sweeps/fig8.toml's
FIG8_FACTORS = (("model.layers", "L"), ("model.hidden", "H"), ("model.heads", "M"))
FIG8_KEYS = ("model.d", "model.layers", "model.hidden", "model.heads")


def fig8_cells(g):
    """{(d, L, H, M, seed): (SPD(OLS, model), SPD(Ridge(0.1), model))}, each SPD averaged over the
    prefixes 1..n-1 (the per-prefix spd rows of eval.legend = "ols_ridge")."""
    acc = {}
    for r in g.metric("spd", g.all_rows):
        o = other(r, TRANSFORMER)
        if o is None or r["prefix"] == "" or int(r["prefix"]) < 1:
            continue
        ref = "ols" if o in ("OLS", "Lstsq") else "ridge" if o == "Ridge(0.1)" else None
        if ref is None:
            continue
        key = tuple(int(r[k]) for k in FIG8_KEYS) + (r["run.seed"],)
        acc.setdefault(key, {}).setdefault(ref, []).append(num(r["value"]))
    out = {}
    for key, v in acc.items():
        if "ols" not in v or "ridge" not in v:
            raise DataError("%s: cell %s lacks the OLS or Ridge(0.1) spd rows" % (g.path, key))
        out[key] = (statistics.fmean(v["ols"]), statistics.fmean(v["ridge"]))
    return out


def fig8_base(cells):
    """The point (L, H, M) around which a one-factor-at-a-time sweep varies each factor: per factor,
    the value most (model) configurations share, counting each (d, L, H, M) once whatever its seeds.
    A factor whose most common value is not unique (a sweep that varies only one factor, such as
    the quick version of sweeps/fig8.toml, or a full grid) keeps FIG8_BASE's value. So
    sweeps/fig8.toml gives (4, 64, 4) and sweeps/fig8_cluster.toml, whose H and M arms sit at
    L = 8, gives (8, 64, 4)."""
    configs = {k[:len(FIG8_KEYS)] for k in cells}
    base = {}
    for key, _ in FIG8_FACTORS:
        counts = collections.Counter(c[FIG8_KEYS.index(key)] for c in configs)
        top = counts.most_common()
        unique = top and (len(top) == 1 or top[0][1] > top[1][1])
        base[key] = top[0][0] if unique else FIG8_BASE[key]
    return base


def fig8_table(g, base=None):
    """{d: {factor key: (smallest passing value or None, [(value, seeds passing, seeds, mean SPD
    to OLS, mean SPD to Ridge(0.1))])}}. A value passes when the mean over its seeds of SPD(OLS,
    model) is below that of SPD(Ridge(0.1), model); the other two factors at `base` (default:
    fig8_base of the cells)."""
    cells = fig8_cells(g)
    base = base if base is not None else fig8_base(cells)
    table = {}
    for d in sorted({k[0] for k in cells}):
        table[d] = {}
        for key, _ in FIG8_FACTORS:
            i = FIG8_KEYS.index(key)
            rows = []
            for v in sorted({k[i] for k in cells if k[0] == d}):
                sel = [val for k, val in cells.items() if k[0] == d and k[i] == v and all(
                    k[FIG8_KEYS.index(o)] == base[o] for o in base if o != key)]
                if not sel:
                    continue
                ols = statistics.fmean(a for a, _ in sel)
                ridge = statistics.fmean(b for _, b in sel)
                rows.append((v, sum(a < b for a, b in sel), len(sel), ols, ridge))
            passing = [v for v, _, _, o, r in rows if o < r]
            table[d][key] = (min(passing) if passing else None, rows)
    return table


def fig8_decided(t):
    """{(d, factor key): whether fig8_table's smallest passing value at d is final: every value
    below it that some d tried was tried at d too (or, when none passes, every value some d
    tried). A partial gather leaves the others open; they take no part in the claims."""
    values = {key: {row[0] for d in t for row in t[d][key][1]} for key, _ in FIG8_FACTORS}
    out = {}
    for d in t:
        for key, _ in FIG8_FACTORS:
            v, tried = t[d][key]
            here = {row[0] for row in tried}
            out[d, key] = bool(tried) and all(u in here for u in values[key]
                                              if v is None or u < v)
    return out


# ---------------------------------------------------------------------------------------------
# Fig. 4: probes


TARGET_NAMES = {"xty": "XᵀY", "w_ols": "w_OLS"}  # the probe targets as the docs write them


def probe_curves(g, rows):
    """{(model label, target, readout): {layer: mean over n (then seeds) of held-out 1 - R^2}}."""
    acc = {}
    for r in rows:
        if r["metric"] != "probe_r2":
            continue
        label = probe_label(r)
        key = (label, r["a"], r["b"])
        acc.setdefault(key, {}).setdefault(int(r["layer"]), {}).setdefault(r["run.seed"], []).append(
            1 - num(r["value"]))
    return {k: {layer: statistics.fmean(statistics.fmean(v) for v in seeds.values())
                for layer, seeds in sorted(layers.items())} for k, layers in acc.items()}


def probe_label(r):
    parts = []
    if "run.task.w_std" in r:
        parts.append("main" if float(r["run.task.w_std"]) > 0 else
                     "control (w = %g)" % float(r["run.task.w_mean"]))
    if "model.layers" in r:
        parts.append("L = %s" % r["model.layers"])
    if "probe.width" in r:
        parts.append("H' = %s, MLP %s" % (r["probe.width"], r["probe.mlp"]))
    if "probe.standardize_targets" in r:
        parts.append("std targets" if r["probe.standardize_targets"] == "true" else "raw targets")
    if "probe.prompts" in r:
        parts.append("%s prompts" % r["probe.prompts"])
    return ", ".join(parts) or "main"

#!/usr/bin/python3
"""Writes the generated blocks of docs/reproduction.md from the committed sweep results.

usage: reproduction.py [--doc docs/reproduction.md] [--results docs/results] [--check]

Every number of a figure's tables and verdicts in docs/reproduction.md sits between markers
`<!-- gen:NAME -->` and `<!-- /gen:NAME -->` and is computed here from RESULTS/<sweep>/gathered.csv
(the committed output of `tools/icl_sweep.py gather`) through scripts/figdata.py, the module
plot_figures.py draws from too. Without --check the blocks are rewritten in place; with --check
nothing is written and the exit status is 1 when a block differs from what the CSVs give (CTest
docs.reproduction), naming the block. A sweep whose gathered.csv is absent gets a block that says
so. Standard library only.
"""
import argparse
import math
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import figdata  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from figdata import TRANSFORMER, DataError, mean_sd, ordered  # noqa: E402

PROG = "reproduction.py"


def g3(x):
    """A number with 3 significant digits (nan as an en dash)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if x == 0:
        return "0"
    if abs(x) >= 1e-3 and abs(x) < 1e4:
        return ("%.3g" % x)
    return "%.2e" % x


def pm(vals):
    m, s = mean_sd(vals)
    return g3(m) if math.isnan(s) else "%s ± %s" % (g3(m), g3(s))


def frac(x):
    from fractions import Fraction
    f = Fraction(x).limit_denominator(100)
    return str(f.numerator) if f.denominator == 1 else "%d/%d" % (f.numerator, f.denominator)


def provenance(g, sweep):
    total, done, core_h, hosts = g.bookkeeping()
    seeds = len(g.seeds)
    state = ("all %d cells done" % total if total != 1 else "its cell done") if done == total else "**%d of %d cells done** (a partial " \
        "gather: the rest have not run yet)" % (done, total)
    shas, mixed, unrecorded = g.runners()
    builds = ""
    if shas:  # attempts of executors that record the runner's build (older ones do not)
        builds = "; runner build%s %s" % ("s" if len(shas) > 1 else "",
                                           ", ".join("`%s`" % h[:12] for h in shas))
        if mixed:
            builds += " (**%d cell%s run by more than one build**: resumed or re-evaluated)" % (
                len(mixed), "s" if len(mixed) > 1 else "")
        if unrecorded:
            builds += ", %d earlier attempt%s without a record of the build" % (
                unrecorded, "s" if unrecorded > 1 else "")
    return ("_Generated from `docs/results/%s/gathered.csv` (`sweeps/%s.toml`): %s, %d seed%s; "
            "%.2f core-hours of training and evaluation recorded in the cells' attempts "
            "(hosts: %s%s)._" % (sweep, sweep, state, seeds, "s" if seeds != 1 else "", core_h,
                                 ", ".join(hosts) or "none recorded", builds))


def not_run(sweep):
    return ("_Not run yet: no `docs/results/%s/gathered.csv`. Run `python3 tools/icl_sweep.py run "
            "sweeps/%s.toml --root docs/results/%s -P 2 -T 1`, then `gather` (add `--partial` while "
            "cells are missing) and `python3 scripts/reproduction.py`._" % (sweep, sweep, sweep))


# ---------------------------------------------------------------------------------------------


def fig1_values(g, metric):
    """{(algorithm, prefix): {seed: value / d}} of `metric` between each algorithm and the model,
    prefixes n >= 1."""
    d = g.d()
    val = {}
    for r in g.metric(metric):
        if other_t(r) is not None and r["prefix"] != "" and int(r["prefix"]) >= 1:
            val.setdefault((other_t(r), int(r["prefix"])), {})[r["run.seed"]] = \
                figdata.num(r["value"]) / d
    return val


def fig1(g):
    d = g.d()
    out = [provenance(g, "fig1"), ""]
    seeds = ordered(r["run.seed"] for r in g.rows)
    many = len(seeds) > 1
    for metric, label in (("spd", "SPD/d"), ("ilwd", "ILWD/d")):
        val = fig1_values(g, metric)
        algos = ordered(a for a, _ in val)
        prefixes = sorted({n for _, n in val})
        show = [n for n in (1, 2, 4, 6, 7, d, d + 1, d + 2, 12, 16, 24, 32) if n in prefixes]
        if prefixes and prefixes[-1] not in show:
            show.append(prefixes[-1])
        out.append("%s of each algorithm to the trained model per number of examples n (the "
                   "paper's axes; %smean over %d prefixes in the last column%s):" % (
                       label, "mean over the %d seeds; " % len(seeds) if many else "",
                       len(prefixes), ", ± s.d. over the seeds" if many else ""))
        out.append("")
        out.append("| algorithm | " + " | ".join("**%d = d**" % n if n == d else str(n) for n in show)
                   + " | mean 1..%d |" % prefixes[-1])
        out.append("|---" * (len(show) + 2) + "|")
        for a in algos:
            means = [statistics.fmean(val[(a, n)].values()) if (a, n) in val else None
                     for n in show]
            per_seed = [statistics.fmean(val[(a, n)][s] for n in prefixes) for s in seeds]
            out.append("| %s | " % a + " | ".join(g3(m) for m in means) + " | %s |" % pm(per_seed))
        out.append("")
    val = fig1_values(g, "spd")
    prefixes = sorted({n for _, n in val})
    classic = [a for a in ordered(a for a, _ in val) if a not in ("OLS", "Ridge(0.1)")]

    def counts(at):  # at(a, n): the value compared (a seed's, or the mean over the seeds)
        return (sum(all(at("OLS", n) < at(a, n) for a in classic) for n in prefixes),
                sum(at("Ridge(0.1)", n) < at("OLS", n) for n in prefixes))

    ols_best, ridge_closer = counts(lambda a, n: statistics.fmean(val[(a, n)].values()))
    per = [counts(lambda a, n, s=s: val[(a, n)][s]) for s in seeds]

    def tail(i):  # claim i's count per seed, with several seeds
        return " (per seed: %s)" % ", ".join(str(c[i]) for c in per) if many else ""

    out.append("| claim | paper | ours |")
    out.append("|---|---|---|")
    out.append("| the model is closer to OLS than to %s at every prefix n >= 1 | yes | %s: at %d of "
               "%d prefixes%s%s |" % (", ".join(classic), "**reproduced**" if ols_best == len(prefixes)
                                      else "**not reproduced**", ols_best, len(prefixes),
                                      " by the mean over the seeds" if many else "", tail(0)))
    out.append("| OLS is the closest algorithm (Ridge(0.1) included) | yes | %s: Ridge(0.1) is closer "
               "than OLS at %d of %d prefixes%s%s |" % (
                   "**reproduced**" if ridge_closer == 0 else "**not reproduced**", ridge_closer,
                   len(prefixes), " by the mean over the seeds" if many else "", tail(1)))
    return "\n".join(out)


def other_t(r):
    return figdata.other(r, TRANSFORMER)


def noise_grid(title, labels, cols, text):
    """A table with one column per noise ratio (sigma, tau) of `cols` and one row per label: the
    cell is text(label, col), "–" where that gives None."""
    out = ["| %s \\ σ²/τ² | " % title + " | ".join(frac(s * s / (t * t)) for s, t in cols) + " |",
           "|---" * (len(cols) + 1) + "|"]
    for lab, name in labels:
        cells = [text(lab, c) for c in cols]
        out.append("| %s | " % name + " | ".join("–" if x is None else x for x in cells) + " |")
    return out


def bold_if(text, yes):
    return "**%s**" % text if yes else text


def ridge_table(g, rows, title):
    preds, cols, vals, best = figdata.ridge_columns(g, rows)
    means = {k: mean_sd(v)[0] for k, v in vals.items()}
    colmin = {c: min((p for p in preds if (p, c) in means), key=lambda p: means[(p, c)])
              for c in cols}
    out = noise_grid(title, [(p, "(%s, ICL)" % p) for p in preds], cols,
                     lambda p, c: bold_if(pm(vals[(p, c)]), colmin[c] == p) if (p, c) in vals
                     else None)
    hits, seed_hits, rows_v = 0, {}, []
    for c in cols:
        bayes = figdata.bayes_name(preds, *c)
        on = colmin[c] == bayes
        hits += on
        for s, b in best[c].items():
            seed_hits[s] = seed_hits.get(s, 0) + (b == bayes)
        lam_best = figdata.ridge_lambda(colmin[c])
        rows_v.append((c, bayes, colmin[c], lam_best, on, best[c]))
    return out, cols, hits, seed_hits, rows_v


def fig2_block(g, sweep, rows, label=""):
    out, cols, hits, seed_hits, rows_v = ridge_table(g, rows, "pair")
    n = len(cols)
    # A seed that has run only some columns (a staged sweep part-way) is counted out of those
    # columns, so that "0" never stands for "0 of 5" when it is 0 of 1.
    seed_cols = {}
    for *_, bs in rows_v:
        for s in bs:
            seed_cols[s] = seed_cols.get(s, 0) + 1
    per_seed = ", ".join("%d" % seed_hits[s] if seed_cols[s] == n else
                         "%d of %d column%s run" % (seed_hits[s], seed_cols[s],
                                                    "" if seed_cols[s] == 1 else "s")
                         for s in sorted(seed_hits, key=int))
    lines = ["", "| column σ²/τ² | Bayes-optimal | closest (mean over seeds) | closest per seed | "
             "model's squared error above the Bayes-optimal's |", "|---|---|---|---|---|"]
    cells = ordered(r["cell"] for r in rows)
    for c, bayes, cm, lam, on, bs in rows_v:
        excess = [excess_error(g.all_rows, x) for x in cells
                  if tuple(float(g.setting(x, k)) for k in NOISE) == c]
        lines.append("| %s (σ = %g, τ = %g) | %s | %s%s | %s | %s |" % (
            frac(c[0] ** 2 / c[1] ** 2), c[0], c[1], bayes or "(not in the grid)", cm,
            " (on the diagonal)" if on else "", ", ".join(bs[s] for s in sorted(bs, key=int)),
            pm(excess)))
    preds = figdata.ridge_columns(g, rows)[0]
    top = max((p for p in preds if figdata.ridge_lambda(p) is not None), key=figdata.ridge_lambda)
    edge = sum(cm == top for _, _, cm, _, _, _ in rows_v)
    if edge:
        lines.append("")
        lines.append("%d column minim%s at the edge of the λ grid (%s): the best λ may lie beyond it." % (
            edge, "um lies" if edge == 1 else "a lie", top))
    verdict = ("| each column's minimum on the Bayes-optimal λ = σ²/τ²%s | 5 of 5 | %s: %d of %d "
               "(per seed: %s) |" % (label, "**reproduced**" if hits == n else "**not reproduced**",
                                    hits, n, per_seed))
    return out + lines, verdict


def fig2(g):
    out, verdict = fig2_block(g, "fig2", g.rows)
    lams = [figdata.ridge_lambda(cm) for _, _, cm, _, _, _ in
            ridge_table(g, g.rows, "pair")[4]]
    grows = all(a <= b for a, b in zip(lams, lams[1:]))
    text = [provenance(g, "fig2"), "",
            "MSPD/d (prefixes 1..d-1) of (algorithm, model), mean ± s.d. over the seeds; "
            "**bold**: the column minimum of the means:", ""] + out + [
        "", "| claim | paper | ours |", "|---|---|---|", verdict,
        "| the closest λ grows with the noise ratio | yes (it equals it) | %s: %s |" % (
            "**reproduced** as a trend" if grows else "**not reproduced**",
            ", ".join(frac(float(x)) for x in lams))]
    return "\n".join(text)


ABLATION = ("model.layers", "run.steps", "model.hidden")  # fig2_ablation's change (its first zip)
NOISE = ("run.task.noise_std", "run.task.w_std")           # and its column (the second)


def change_label(v):
    return "L = %s, %s steps, H = %s" % v


def excess_error(rows, cell):
    """The squared error of the model above the Bayes-optimal predictor's (ridge with lambda =
    sigma^2/tau^2, least squares without noise) on the same evaluation contexts (the sq_error rows
    against the label), averaged over every prefix: the expected loss the model leaves above the
    least possible (0 for a Bayes-optimal model; a sampling error of the contexts either side)."""
    mine = [r for r in rows if r["cell"] == cell and r["metric"] == "sq_error"]
    if not mine:  # a cell evaluated without the squared errors
        return math.nan
    sigma, tau = (float(mine[0][k]) for k in NOISE)
    bayes = figdata.bayes_name(ordered(r["a"] for r in mine), sigma, tau) \
        or ("Lstsq" if sigma == 0 else None)
    err = {}
    for r in mine:
        err.setdefault(r["a"], []).append(figdata.num(r["value"]))
    if bayes not in err or TRANSFORMER not in err:
        return math.nan
    return statistics.fmean(err[TRANSFORMER]) - statistics.fmean(err[bayes])


def selection_table(g, sweep, stage):
    """fig2_ablation's selection per noise column: the held-out loss of each change on the
    selection seeds (bold: the selected one; "open" while a change of the column has not run)."""
    cells = {}
    for r in g.all_rows:
        if r["metric"] == "eval_loss" and int(r["run.seed"]) in stage:
            cells[r["cell"]] = r
    col = lambda r: tuple(float(r[k]) for k in NOISE)  # noqa: E731
    cols = sorted(ordered(col(r) for r in cells.values()), key=figdata.noise_order)
    changes = ordered(tuple(r[k] for k in ABLATION) for r in cells.values())
    loss = {(tuple(r[k] for k in ABLATION), col(r)): (figdata.num(r["value"]), r["selected"] == "1")
            for r in cells.values()}
    unfinished = figdata.open_selections(g, NOISE, stage)
    out = noise_grid("change", [(v, change_label(v)) for v in changes], cols,
                     lambda v, c: bold_if(g3(loss[(v, c)][0]), loss[(v, c)][1]) if (v, c) in loss
                     else None)
    out.append("| selection | " + " | ".join(
        "**open**: %d of %d done" % unfinished[c] if c in unfinished else "final" for c in cols) + " |")
    return out


def fig2_ablation(g):
    sweep = "fig2_ablation"
    stage = figdata.stage_seeds(sweep)
    rows = [r for r in g.all_rows if r["metric"] == "mspd"]
    first = [r for r in rows if not stage or int(r["run.seed"]) in stage]
    on = "seed%s %s" % ("s" if len(stage) > 1 else "", ", ".join(map(str, stage)))
    variants = ordered(tuple(r[k] for k in ABLATION) for r in first)
    text = [provenance(g, sweep), ""]
    verdicts = []
    for v in variants:
        sub = [r for r in first if tuple(r[k] for k in ABLATION) == v]
        label = " (%s%s)" % (change_label(v), "; " + on if stage else "")
        out, verdict = fig2_block(g, sweep, sub, label)
        text += ["**%s**%s: MSPD/d%s:" % (change_label(v), " (%s)" % on if stage else "",
                                         "" if stage else ", mean over the seeds"), ""] + out + [""]
        verdicts.append(verdict)
    if stage:
        text += ["**The selection per column** (%s): held-out loss of %s; **bold**: selected:" % (
                     selection_rule(sweep), on), ""]
        text += selection_table(g, sweep, stage) + [""]
        unfinished = figdata.open_selections(g, NOISE, stage)
        chosen = [r for r in g.rows if r["metric"] == "mspd"
                  and tuple(float(r[k]) for k in NOISE) not in unfinished]
        if chosen:  # the columns whose selection is final, with the seeds run since
            nseeds = len(ordered(r["run.seed"] for r in chosen))
            label = " (per column its selected change, %d seed%s)" % (nseeds,
                                                                     "s" if nseeds > 1 else "")
            out, verdict = fig2_block(g, sweep, chosen, label)
            text += ["**Per column its selected change, the other seeds run**: MSPD/d, mean ± s.d. "
                     "over the seeds:", ""] + out + [""]
            verdicts.append(verdict)
        else:
            text += ["_No column's selection is final yet: the other seeds of a column's selected "
                     "change run once every change of it has run on %s._" % on, ""]
    text += ["| claim | paper | ours |", "|---|---|---|"] + verdicts
    return "\n".join(text)


def selection_rule(sweep):
    """How the sweep's [select] chose: on some seeds (staged) or on the mean over all seeds."""
    seeds = figdata.stage_seeds(sweep)
    if seeds:
        return ("the lowest held-out loss of seed%s %s, whose choice alone then ran the other "
                "seeds" % ("s" if len(seeds) > 1 else "", ", ".join(str(s) for s in seeds)))
    return "the lowest held-out loss averaged over the seeds"


EXPECTED_DEPTH = {1: "GD", 2: "ridge", 4: "ridge", 8: "OLS", 16: "OLS"}


def phase_matches(expected, name):
    """Whether the legend predictor `name` belongs to the expected phase: one family ("GD", "ridge",
    "OLS") or several joined by " or " ("ridge or OLS", the width panel's claim for H >= 16)."""
    return figdata.family(name) in expected.split(" or ")


# Two-sided 95% quantiles of Student's t for the paired test below, by degrees of freedom (seeds - 1);
# above 10 the normal 1.96 (t(10) = 2.23 is the last tabulated: more seeds only sharpen the test).
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228}


NULL = "Zero"  # the null predictor of Fig. 3's legend (0 everywhere): a control, not an algorithm


def paired(a, b):
    """The paired per-seed difference b - a: (mean, s.e., n, resolved at 95% by Student's t or
    None with one seed)."""
    n = min(len(a), len(b))
    diff = [b[i] - a[i] for i in range(n)]
    m = statistics.fmean(diff)
    if n < 2:
        return m, math.nan, n, None
    se = statistics.stdev(diff) / math.sqrt(n)
    return m, se, n, abs(m) > T975.get(n - 1, 1.96) * se


def phase_test(vals, expected):
    """The phase verdict of one panel value with its seed spread. vals: {predictor: [MSPD/d per
    seed]} (the same seeds, in the same order, for every predictor). E: the expected family's
    closest predictor, O: the closest predictor outside it (by the mean over the seeds; the null
    predictor NULL is neither). The verdict by the means is whether E is closer than O; it is
    *resolved* when the paired per-seed difference O - E is nonzero at 95% by Student's t
    (|mean| > t(n-1) * s.e.), which a model seed's spread can hide: with 3 seeds it needs
    |mean| > 4.3 s.e. Returns (matches, resolved or None with one seed or no predictor on one
    side, E, O, mean of O - E, its s.e., n)."""
    vals = {q: v for q, v in vals.items() if q != NULL}
    inside = [q for q in vals if phase_matches(expected, q)]
    outside = [q for q in vals if not phase_matches(expected, q)]
    mean = {q: statistics.fmean(v) for q, v in vals.items()}
    if not inside or not outside:
        return (bool(inside), None, inside and min(inside, key=mean.get),
                outside and min(outside, key=mean.get), math.nan, math.nan, 0)
    e, o = min(inside, key=mean.get), min(outside, key=mean.get)
    m, se, n, resolved = paired(vals[e], vals[o])
    return (m > 0, resolved, e, o, m, se, n)


def phase_verdict(vals, expected):
    """**yes** / **no** by the means, with "unresolved" and the paired difference when the seeds
    cannot tell E from O at 95% (phase_test). Where the legend has the null predictor, E must also
    be closer to the model than predicting 0 is: a model that learned little is close to every
    algorithm with small predictions (one GD step at a small rate) without running it."""
    ok, resolved, e, o, m, se, n = phase_test(vals, expected)
    word = "**yes**" if ok else "**no**"
    if resolved is False:
        word += " (unresolved: %s − %s = %s, s.e. %s over %d seeds; 95%% needs %.1f s.e.)" % (
            o, e, g3(m), g3(se), n, T975.get(n - 1, 1.96))
    if ok and e and NULL in vals:
        zm, zse, zn, zres = paired(vals[e], vals[NULL])
        if zm <= 0:
            word = "**no**: no closer than predicting 0 (%s − %s = %s over %d seed%s)" % (
                NULL, e, g3(zm), zn, "s" if zn > 1 else "")
        elif zres is False:
            word += " (closer than predicting 0 unresolved: %s − %s = %s, s.e. %s over %d seeds)" % (
                NULL, e, g3(zm), g3(zse), zn)
    elif NULL in vals:
        zmean = statistics.fmean(vals[NULL])
        if all(statistics.fmean(v) > zmean for q, v in vals.items() if q != NULL):
            # nothing the model does is closer to an algorithm than to predicting nothing
            word += " (predicting 0 is closer than every algorithm: %s %s)" % (NULL, g3(zmean))
    return word


def panel_block(g, sweep, key, xname, expected):
    p = figdata.panel(g, key)
    text = [provenance(g, sweep), "",
            "MSPD/d (prefixes 1..d-1) of (algorithm, model) for the selected cell of every %s "
            "(mean ± s.d. over the seeds; the selection: %s):" % (xname, selection_rule(sweep)), ""]
    preds = ordered(q for _, (_, v) in p.items() for q in v)
    text.append("| %s | selected | " % xname + " | ".join(preds) + " |")
    text.append("|---" * (len(preds) + 2) + "|")
    verdict = ["", "| %s | paper: best match | ours: best match (MSPD/d), runner-up | best per seed "
               "| reproduced? |" % xname, "|---|---|---|---|---|"]
    unfinished = figdata.open_selections(g, key, figdata.stage_seeds(sweep))
    for x, (sel, vals) in p.items():
        if NULL in vals and len(vals[NULL]) != max(len(v) for v in vals.values()):
            del vals[NULL]  # some seeds' cells were evaluated without it: no paired comparison
        means = {q: mean_sd(v)[0] for q, v in vals.items() if q != NULL}
        best = sorted(means, key=means.get)  # the algorithms only: the null predictor is a control
        seln = ", ".join("%s = %s" % (k.split(".")[-1], v) for k, v in sel) or "–"
        if not sel:  # no other axis: nothing is selected, a missing seed is only missing
            unfinished.pop(x, None)
        if x in unfinished:
            seln += " (**open**: %d of %d selection cells done)" % unfinished[x]
        text.append("| %d | %s | " % (x, seln) + " | ".join(
            ("**%s**" % pm(vals[q]) if q == best[0] else pm(vals[q])) if q in vals else "–"
            for q in preds) + " |")
        per_seed = []
        nseeds = len(next(iter(vals.values())))
        for i in range(nseeds):
            per_seed.append(min((q for q in vals if q != NULL),
                                key=lambda q: vals[q][i] if i < len(vals[q]) else math.inf))
        exp = expected(x)
        verdict.append("| %d | %s | %s %s, %s %s | %s | %s |" % (
            x, exp or "–", best[0], g3(means[best[0]]), best[1], g3(means[best[1]]),
            ", ".join(per_seed), "–" if not exp else
            "open (selection unfinished)" if x in unfinished else phase_verdict(vals, exp)))
    return "\n".join(text + verdict)


def fig3(g):
    return panel_block(g, "fig3", "model.layers", "L", lambda x: EXPECTED_DEPTH.get(x))


def fig3b(g):
    return panel_block(g, "fig3b", "model.layers", "L", lambda x: EXPECTED_DEPTH.get(x))


def fig3_width(g):
    return panel_block(g, "fig3_width", "model.hidden", "H",
                       lambda x: "ridge or OLS" if x >= 16 else None)


def fig8(g):
    base = figdata.fig8_base(figdata.fig8_cells(g))
    t = figdata.fig8_table(g, base)
    text = [provenance(g, "fig8"), "",
            "The smallest L, H and M (one factor at a time, the other two at L = %d, H = %d, M = %d) "
            "for which the mean over the seeds of SPD(OLS, model) is below that of SPD(Ridge(0.1), "
            "model), each SPD averaged over the prefixes 1..n-1; in brackets the ratio "
            "SPD(OLS)/SPD(Ridge(0.1)) at every value tried (< 1 passes):" % (
                base["model.layers"], base["model.hidden"], base["model.heads"]), "",
            "| d | smallest L | smallest H | smallest M |", "|---|---|---|---|"]
    decided = figdata.fig8_decided(t)
    for d, row in t.items():
        cells = []
        for key, _ in figdata.FIG8_FACTORS:
            v, tried = row[key]
            ratios = ", ".join("%d: %s" % (x, g3(o / r) if r > 0 else "–") for x, _, _, o, r in tried)
            if not tried:
                cells.append("– (not run)")
                continue
            what = str(v) if v is not None else "none passes"
            if not decided[d, key]:
                what = ("≤ %s" % v if v is not None else "none passes yet") + " (values not run)"
            cells.append("%s (%s)" % (what, ratios))
        text.append("| %d | " % d + " | ".join(cells) + " |")
    text += ["", "| claim | paper | ours |", "|---|---|---|"] + fig8_claims(t, decided)
    return "\n".join(text)


def fig8_claims(t, decided=None):
    """The verdict rows of App. H's two claims on fig8_table's output: one head suffices (M = 1
    passes at every d where some M passes), and the smallest L and H grow with d in steps
    (non-decreasing over the d run, at least one step up; "none passes" counts as above every value
    tried, so a d where nothing passes after one where something did is a step up). Only the d
    whose value is final (fig8_decided) take part, and a claim with a passing value at fewer than
    two d is "not tested": one value says nothing about a trend over d. `decided`: fig8_decided(t),
    computed here when not given."""
    rows = []
    decided = decided if decided is not None else figdata.fig8_decided(t)
    with_m = [d for d, row in t.items() if row["model.heads"][0] is not None
              and decided[d, "model.heads"]]
    one = [d for d in with_m if t[d]["model.heads"][0] == 1]
    if len(with_m) < 2:
        verdict = "**not tested**: some M passes at %s (the claim needs two d at least)" % (
            ", ".join("d = %d" % d for d in with_m) or "no d")
    else:
        verdict = "%s: M = 1 at %d of the %d d where some M passes (%s)" % (
            "**reproduced**" if len(one) == len(with_m) else "**not reproduced**", len(one),
            len(with_m), ", ".join("d = %d" % d for d in with_m))
    rows.append("| one head suffices for every d | yes | %s |" % verdict)
    for key, label in (("model.layers", "L"), ("model.hidden", "H")):
        seq = [(d, t[d][key][0]) for d in t if decided[d, key]]
        vals = [math.inf if v is None else v for _, v in seq]
        grows = all(a <= b for a, b in zip(vals, vals[1:])) and len(set(vals)) > 1
        shown = "smallest %s at d = %s: %s" % (label, ", ".join(str(d) for d, _ in seq), ", ".join(
            "none" if v is None else str(v) for _, v in seq)) if seq else "nothing run"
        if sum(v is not None for _, v in seq) < 2:
            verdict = "**not tested** (a value passes at fewer than two d)"
        else:
            verdict = "**reproduced**" if grows else "**not reproduced**"
        rows.append("| the smallest %s grows with d, in steps | yes | %s: %s |" % (label, verdict,
                                                                                 shown))
    return rows


def decodable_from(curve):
    """The first layer whose 1 - R^2 is within 10% (relative) of the curve's minimum over layers."""
    best = min(curve.values())
    return min(layer for layer, v in curve.items() if v <= best * 1.1 + 1e-12)


def probe_block(g, sweep):
    curves = figdata.probe_curves(g, g.rows)
    layers = sorted({layer for c in curves.values() for layer in c})
    text = [provenance(g, sweep), "",
            "Held-out 1 − R² per layer, mean over the probed n (then over the seeds):", "",
            "| model, target, read-out | " + " | ".join(str(x) for x in layers) + " |",
            "|---" * (len(layers) + 1) + "|"]
    for (label, t, ro), c in sorted(curves.items()):
        text.append("| %s, %s, %s | " % (label, TARGET.get(t, t), ro) +
                    " | ".join(g3(c.get(x)) for x in layers) + " |")
    models = ordered(k[0] for k in curves)
    seeds = ordered(r["run.seed"] for r in g.rows)
    # with several seeds, the ordering of each seed's own curves (a seed's curve: mean over n)
    per_seed = {s: figdata.probe_curves(g, [r for r in g.rows if r["run.seed"] == s])
                for s in seeds} if len(seeds) > 1 else {}
    text += ["", "| model | MLP beats linear (target, layer) | XᵀY decodable from layer (MLP) | "
             "w_OLS decodable from layer (MLP) | XᵀY before w_OLS? | best 1 − R² (MLP): XᵀY, w_OLS "
             "| best layer (MLP): XᵀY, w_OLS | XᵀY best before w_OLS? |" +
             (" per seed %s: decodable from (XᵀY, w_OLS), before? |" % ", ".join(seeds)
              if per_seed else ""),
             "|---|---|---|---|---|---|---|---|" + ("---|" if per_seed else "")]
    for m in models:
        if m.startswith("control"):
            continue
        wins = total = 0
        for t in ("xty", "w_ols"):
            lin, mlp = curves.get((m, t, "linear")), curves.get((m, t, "mlp"))
            if lin and mlp:
                for x in mlp:
                    total += 1
                    wins += mlp[x] < lin.get(x, math.inf)
        cx, cw = curves.get((m, "xty", "mlp")), curves.get((m, "w_ols", "mlp"))
        if not (cx and cw):
            continue
        lx, lw = decodable_from(cx), decodable_from(cw)
        bx, bw = min(cx, key=cx.get), min(cw, key=cw.get)
        seedwise = ""
        if per_seed:
            got = []
            for s in seeds:
                sx, sw = per_seed[s].get((m, "xty", "mlp")), per_seed[s].get((m, "w_ols", "mlp"))
                if sx and sw:
                    fx, fw = decodable_from(sx), decodable_from(sw)
                    got.append((fx, fw, fx < fw))
            seedwise = " %s; %d of %d |" % (", ".join("(%d, %d) %s" % (fx, fw, "yes" if ok else "no")
                                                      for fx, fw, ok in got),
                                           sum(ok for _, _, ok in got), len(got))
        text.append("| %s | %d of %d | %d | %d | %s | %s, %s | %d, %d | %s |%s" % (
            m, wins, total, lx, lw, "**yes**" if lx < lw else "**no**", g3(min(cx.values())),
            g3(min(cw.values())), bx, bw, "**yes**" if bx < bw else "**no**", seedwise))
    text += ["", "(\"decodable from layer ℓ\": the first layer whose 1 − R² is within 10% of the "
             "curve's minimum over the layers; \"best layer\": the layer of that minimum. The paper: "
             "XᵀY from about layer 7, w_OLS from about layer 12 of 16.)"]
    return "\n".join(text)


TARGET = figdata.TARGET_NAMES


def fig4(g):
    return probe_block(g, "fig4")


def fig4_ablation(g):
    return probe_block(g, "fig4_ablation")


def fig4_seeds(g):
    return probe_block(g, "fig4_seeds")


GENERATORS = {"fig1": fig1, "fig2": fig2, "fig2_ablation": fig2_ablation, "fig3": fig3,
              "fig3_width": fig3_width, "fig3b": fig3b, "fig4": fig4, "fig4_ablation": fig4_ablation,
              "fig4_seeds": fig4_seeds, "fig8": fig8}


def block(name, results):
    root = os.path.join(results, name)
    if not os.path.exists(os.path.join(root, "gathered.csv")):
        return not_run(name)
    return GENERATORS[name](figdata.Root(root))


MARK = re.compile(r"<!-- gen:([a-z0-9_]+) -->\n(.*?)<!-- /gen:\1 -->", re.S)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--doc", default=os.path.join(here, "docs", "reproduction.md"))
    ap.add_argument("--results", default=os.path.join(here, "docs", "results"))
    ap.add_argument("--check", action="store_true", help="exit 1 if a block is out of date")
    a = ap.parse_args()
    with open(a.doc, encoding="utf-8") as f:
        doc = f.read()
    names = [m.group(1) for m in MARK.finditer(doc)]
    unknown = [n for n in names if n not in GENERATORS]
    if unknown:
        sys.exit("%s: %s: unknown block gen:%s (known: %s)" % (PROG, a.doc, unknown[0],
                                                                ", ".join(GENERATORS)))
    missing = [n for n in GENERATORS if n not in names]
    if missing:
        sys.exit("%s: %s: no block <!-- gen:%s --> ... <!-- /gen:%s -->" % (PROG, a.doc, missing[0],
                                                                           missing[0]))
    stale = []

    def repl(m):
        try:
            body = block(m.group(1), a.results).rstrip("\n") + "\n"
        except (DataError, OSError, KeyError, ValueError) as e:
            sys.exit("%s: block %s: %s" % (PROG, m.group(1), e))
        if body != m.group(2):
            stale.append(m.group(1))
        return "<!-- gen:%s -->\n%s<!-- /gen:%s -->" % (m.group(1), body, m.group(1))

    new = MARK.sub(repl, doc)
    if a.check:
        if stale:
            sys.exit("%s: %s is out of date with the CSVs under %s in block%s %s; run "
                     "scripts/reproduction.py" % (PROG, a.doc, a.results, "s" if len(stale) > 1
                                                 else "", ", ".join(stale)))
        print("%s: %d blocks agree with the CSVs" % (PROG, len(names)))
        return
    if new != doc:
        tmp = a.doc + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(new)
        os.replace(tmp, a.doc)
    print("%s: %d blocks, %d rewritten" % (PROG, len(names), len(stale)))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""CTest docs.reproduction_selftest: scripts/reproduction.py --check can fail.

On the gathered CSVs of the quick figure sweeps (the fixture of example.fig1 ... example.fig8,
build/examples/figures_quick/<sweep>/), a document made of empty generated blocks is written by
reproduction.py; then --check must pass on it, and fail (exit 1, naming the block) when one value
of one gathered.csv changes or when one number of the document changes; a block with an unknown
name or a missing block is refused (exit != 0). Every sweep with a gathered.csv must produce a
generated table, not the "not run yet" text.
"""
import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
SCRIPT = os.path.join(SRC, "scripts", "reproduction.py")
sys.path.insert(0, os.path.join(SRC, "scripts"))
import reproduction  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(doc, results, *extra):
    return subprocess.run([sys.executable, SCRIPT, "--doc", doc, "--results", results, *extra],
                          capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--quick", default=None, help="figures_quick folder (default: next to --work)")
    a = ap.parse_args()
    quick = a.quick or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(a.work))),
                                    "examples", "figures_quick")
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    names = list(reproduction.GENERATORS)
    present = [n for n in names if os.path.exists(os.path.join(quick, n, "gathered.csv"))]
    check(len(present) >= 4, "quick results present for %s (under %s)" % (present, quick))
    results = os.path.join(a.work, "results")
    shutil.copytree(quick, results, ignore=shutil.ignore_patterns("*.safetensors", "*.png"))
    doc = os.path.join(a.work, "doc.md")
    with open(doc, "w") as f:
        f.write("# t\n\n" + "".join("<!-- gen:%s -->\n<!-- /gen:%s -->\n\n" % (n, n) for n in names))

    r = run(doc, results)
    check(r.returncode == 0, "write: exit 0 (%s)" % (r.stderr.strip() or r.stdout.strip()))
    text = open(doc).read()
    for n in names:
        body = re.search(r"<!-- gen:%s -->\n(.*?)<!-- /gen:%s -->" % (n, n), text, re.S).group(1)
        if n in present:
            check("Generated from" in body and "|---" in body, "block %s is a generated table" % n)
        else:
            check("Not run yet" in body, "block %s says it was not run" % n)
    r = run(doc, results, "--check")
    check(r.returncode == 0, "--check passes on what it wrote (%s)" % r.stderr.strip())

    # one value of fig2's gathered.csv changed: --check names fig2
    g = os.path.join(results, "fig2", "gathered.csv")
    if os.path.exists(g):
        # a value the table shows: an mspd row of a pair with the Transformer (the gathered CSV
        # also holds pairs of two classical algorithms, which Fig. 2's table does not use)
        with open(g, newline="") as f:
            rows = list(csv.reader(f))
        head = rows[0]
        vi, mi, ai, bi = (head.index(k) for k in ("value", "metric", "a", "b"))
        changed = None
        for i, f in enumerate(rows[1:], 1):
            if len(f) == len(head) and f[mi] == "mspd" and "Transformer" in (f[ai], f[bi]):
                f[vi] = repr(float(f[vi]) * 3 + 1)
                changed = i
                break
        check(changed is not None, "fig2's gathered.csv has an mspd row with the Transformer")
        with open(g, "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
        r = run(doc, results, "--check")
        check(r.returncode == 1 and "fig2" in r.stderr, "a changed CSV value fails --check, naming "
              "fig2 (rc %d: %s)" % (r.returncode, r.stderr.strip()))
        r = run(doc, results)
        r = run(doc, results, "--check")
        check(r.returncode == 0, "a rewrite repairs the document")

    # one number of the document changed
    text = open(doc).read()
    m = re.search(r"(\| \(\S+, ICL\) \| )([0-9])", text)
    if m:
        bad = text[:m.start(2)] + str((int(m.group(2)) + 1) % 10) + text[m.end(2):]
        open(doc, "w").write(bad)
        r = run(doc, results, "--check")
        check(r.returncode == 1, "a changed number in the document fails --check (rc %d)"
              % r.returncode)
        open(doc, "w").write(text)

    # an unknown block, a missing block
    open(doc, "w").write(text + "<!-- gen:nope -->\n<!-- /gen:nope -->\n")
    r = run(doc, results, "--check")
    check(r.returncode != 0 and "unknown block gen:nope" in r.stderr, "an unknown block is refused")
    open(doc, "w").write(re.sub(r"<!-- gen:fig8 -->.*?<!-- /gen:fig8 -->", "", text, flags=re.S))
    r = run(doc, results, "--check")
    check(r.returncode != 0 and "gen:fig8" in r.stderr, "a missing block is refused")

    # the runner builds of the provenance line: a cell whose attempts name two builds is flagged
    # (an attempt of another build appended to a fig1 cell), and --check sees the change
    fig1_cells = os.path.join(results, "fig1", "cells")
    open(doc, "w").write(text)
    if os.path.isdir(fig1_cells):
        c = sorted(os.listdir(fig1_cells))[0]
        ap_path = os.path.join(fig1_cells, c, "attempts.json")
        saved = open(ap_path).read() if os.path.exists(ap_path) else None
        attempts = json.loads(saved) if saved else []
        for a in attempts:
            a.setdefault("runner_sha256", "a" * 64)
        attempts.append({"executor": "local", "attempt": len(attempts) + 1, "exit": 0,
                         "start": "2026-01-01T00:00:00+00:00", "end": "2026-01-01T00:00:01+00:00",
                         "threads": 1, "runner_sha256": "b" * 64})
        with open(ap_path, "w") as f:
            json.dump(attempts, f)
        r = run(doc, results, "--check")
        check(r.returncode == 1 and "fig1" in r.stderr, "a second runner build fails --check on "
              "fig1 (rc %d: %s)" % (r.returncode, r.stderr.strip()))
        run(doc, results)
        b = re.search(r"<!-- gen:fig1 -->\n(.*?)<!-- /gen:fig1 -->", open(doc).read(), re.S).group(1)
        check("**1 cell run by more than one build**" in b and "`bbbbbbbbbbbb`" in b,
              "fig1: the cell trained by two builds is flagged (%s)" % b.splitlines()[0])
        if saved is None:
            os.remove(ap_path)
        else:
            open(ap_path, "w").write(saved)
        open(doc, "w").write(text)

    # Fig. 3's staged selection: a seed-0 cell not done leaves its depth's selection open, which
    # the table and the verdict must say (the gathered rows alone look like a finished selection)
    body = lambda t: re.search(r"<!-- gen:fig3 -->\n(.*?)<!-- /gen:fig3 -->", t, re.S).group(1)
    cells = os.path.join(results, "fig3", "cells")
    open(doc, "w").write(text)
    if os.path.isdir(cells):
        check("**open**" not in body(text) and "unfinished" not in body(text),
              "fig3: every selection cell done: no depth marked open")
        victim = None
        for c in sorted(os.listdir(cells)):
            st = os.path.join(cells, c, "status.json")
            with open(os.path.join(cells, c, "config.json")) as f:
                settings = json.load(f)["settings"]
            if settings.get("run.seed") == 0 and os.path.exists(st):
                victim = (st, open(st).read(), settings["model.layers"])
                break
        check(victim is not None, "fig3: a seed-0 cell with a status.json")
        if victim:
            with open(victim[0], "w") as f:
                json.dump({"state": "pending"}, f)
            r = run(doc, results, "--check")
            check(r.returncode == 1 and "fig3" in r.stderr, "fig3: a selection cell not done "
                  "fails --check on the finished document (rc %d: %s)" % (r.returncode, r.stderr.strip()))
            run(doc, results)
            b = body(open(doc).read())
            row = [ln for ln in b.splitlines() if ln.startswith("| %d |" % victim[2])]
            check(len(row) == 2 and "**open**" in row[0] and "open (selection unfinished)" in row[1]
                  and "**yes**" not in row[1] and "**no**" not in row[1],
                  "fig3: L = %d marked open in the table and the verdict (%s)" % (victim[2], row))
            with open(victim[0], "w") as f:
                f.write(victim[1])
            open(doc, "w").write(text)

    # the phase verdicts of Figs. 3a/3b and the width panel ("ridge or OLS": either family passes)
    for expected, name, want in (("ridge or OLS", "Ridge(0.1)", True), ("ridge or OLS", "OLS", True),
                                 ("ridge or OLS", "GD(0.02)", False), ("GD", "SGD(0.01)", True),
                                 ("OLS", "Ridge(0.5)", False), ("ridge", "kNN(3)", False)):
        check(reproduction.phase_matches(expected, name) == want,
              "phase verdict: %s counts as %r: %s" % (name, expected, want))

    # the seed spread in those verdicts (reproduction.phase_test: paired per-seed differences,
    # Student's t at 95%): a gap the seeds resolve, one they do not (3 seeds need 4.3 s.e.), one
    # seed (no test), and a verdict against the expected family that the seeds do resolve
    tied = {"OLS": [0.0060, 0.0050, 0.0073], "Ridge(0.1)": [0.0062, 0.0058, 0.0062]}
    clear = {"OLS": [0.0048, 0.0050, 0.0047], "Ridge(0.1)": [0.0074, 0.0077, 0.0072]}
    for vals, exp, want_ok, want_res, what in (
            (clear, "OLS", True, True, "a gap of 10 s.e. over 3 seeds is resolved"),
            (tied, "OLS", False, False, "OLS behind Ridge(0.1) by 3e-5 at a spread of 7e-4: "
             "unresolved"),
            (clear, "ridge", False, True, "the expected family clearly behind: resolved no"),
            ({k: v[:1] for k, v in tied.items()}, "OLS", True, None, "one seed: no test")):
        ok, res, e, o, m, se, n = reproduction.phase_test(vals, exp)
        check(ok == want_ok and res == want_res, "phase test: %s (ok %s, resolved %s)" % (
            what, ok, res))
    v = reproduction.phase_verdict(tied, "OLS")
    check(v.startswith("**no** (unresolved: Ridge(0.1) − OLS = ") and "3 seeds" in v,
          "an unresolved verdict says so with the paired difference (%s)" % v)
    check(reproduction.phase_verdict(clear, "OLS") == "**yes**", "a resolved verdict is plain")
    # the null predictor of Fig. 3's legend: never a match itself, and a match must beat it
    gd = {"GD(0.02)": [0.099, 0.103, 0.102], "Ridge(0.5)": [0.25, 0.26, 0.24]}
    v = reproduction.phase_verdict(dict(gd, Zero=[0.166, 0.095, 0.202]), "GD")
    check(v.startswith("**yes** (closer than predicting 0 unresolved: Zero − GD(0.02) = "),
          "GD closer than Zero on 2 of 3 seeds: yes, the null comparison unresolved (%s)" % v)
    v = reproduction.phase_verdict(dict(gd, Zero=[0.09, 0.095, 0.1]), "GD")
    check(v.startswith("**no**: no closer than predicting 0 (Zero − GD(0.02) = "),
          "Zero closer than the best GD: no (%s)" % v)
    check(reproduction.phase_verdict(dict(gd, Zero=[0.5, 0.52, 0.49]), "GD") == "**yes**",
          "Zero far away: a plain yes")
    v = reproduction.phase_verdict(dict(gd, Zero=[0.04, 0.03, 0.05]), "ridge")
    check(v == "**no** (predicting 0 is closer than every algorithm: Zero 0.04)",
          "an untrained model's verdict says that predicting 0 is closest (%s)" % v)
    check(reproduction.phase_test({"Zero": [0.01], "OLS": [0.02], "GD(0.02)": [0.03]}, "OLS")[3]
          == "GD(0.02)", "the null predictor is not the closest algorithm outside the family")

    # App. H's verdicts on made-up tables: {d: {factor: (smallest passing, rows tried)}}, every
    # value of VALUES tried (passing from the smallest on) unless a d lists fewer
    values = {"model.layers": (1, 2, 4, 8), "model.hidden": (16, 32, 64), "model.heads": (1, 4)}

    def table(per_d, tried=None):
        out = {}
        for d, smallest in per_d.items():
            out[d] = {}
            for k, v in zip(values, smallest):
                run = (tried or {}).get((d, k), values[k])
                out[d][k] = (v, [(u, 1, 1, 0.0 if v is not None and u >= v else 2.0, 1.0)
                                 for u in run])
        return out
    rows = reproduction.fig8_claims(table({1: (1, 16, 1), 4: (2, 16, 1), 8: (4, 32, 1)}))
    check(all("**reproduced**" in r for r in rows), "fig8: growing L and H, M = 1 everywhere: "
          "three claims reproduced (%s)" % rows)
    rows = reproduction.fig8_claims(table({1: (2, 16, 1), 4: (1, 16, 4), 8: (None, 16, None)}))
    check(["**not reproduced**" in r for r in rows] == [True, True, True],
          "fig8: M = 4 needed at d = 4, L falls then none, H constant: none reproduced (%s)" % rows)
    rows = reproduction.fig8_claims(table({1: (1, 16, 1), 4: (2, 32, 1), 8: (None, 32, 1)}))
    check("**reproduced**" in rows[1], "fig8: none passing after a value is a step up (%s)" % rows[1])
    rows = reproduction.fig8_claims(table({1: (2, 16, 1), 4: (None, None, None)}))
    check(all("**not tested**" in r for r in rows), "fig8: a value at one d only: not tested (%s)"
          % rows)
    # a partial gather: at d = 4 only L = 1, 2 have run and neither passes: not a step up yet
    t = table({1: (2, 16, 1), 4: (None, 16, 1)}, tried={(4, "model.layers"): (1, 2)})
    check(not reproduction.figdata.fig8_decided(t)[4, "model.layers"] and "d = 1: 2 |" in
          reproduction.fig8_claims(t)[1], "fig8: an unfinished d takes no part in the claims (%s)"
          % reproduction.fig8_claims(t)[1])

    # the point the factors vary around, read from the cells: {(d, L, H, M, seed): SPDs}
    def arms(base, ls, hs, ms, seeds=(0,), ds=(1, 4)):
        L0, H0, M0 = base
        zip_ = ([(L, H0, M0) for L in ls] + [(L0, H, M0) for H in hs if H != H0]
                + [(L0, H0, M) for M in ms if M != M0])
        return {(d,) + c + (s,): (1.0, 1.0) for d in ds for c in zip_ for s in seeds}
    fb = reproduction.figdata.fig8_base
    for base, ls, hs, ms, what in (((4, 64, 4), (1, 2, 4, 8), (16, 32, 64), (1, 4), "sweeps/fig8.toml"),
                                   ((8, 64, 4), (1, 2, 4, 8, 16), (16, 32, 64), (1, 4),
                                    "sweeps/fig8_cluster.toml")):
        got = fb(arms(base, ls, hs, ms, seeds=(0, 1, 2)))
        check(got == dict(zip(("model.layers", "model.hidden", "model.heads"), base)),
              "fig8_base of %s's design: %s, got %s" % (what, base, got))
    got = fb(arms((1, 64, 4), (1, 2), (64,), (4,)))  # the quick fig8: L varied alone, no mode
    check(got == reproduction.figdata.FIG8_BASE, "fig8_base without a most common L keeps FIG8_BASE "
          "(%s)" % got)

    # fig2_ablation's staged selection per noise column (the quick sweep: 2 changes x 2 columns on
    # seed 0, then seed 1 of each column's choice): one selected change per column, every
    # selection final, and the selected changes' block over both seeds
    b = re.search(r"<!-- gen:fig2_ablation -->\n(.*?)<!-- /gen:fig2_ablation -->", text, re.S)
    if b and "fig2_ablation" in present:
        body = b.group(1)
        sel = body.split("**The selection per column**")[-1].split("\n\n")[1].splitlines()
        rows = [ln.split(" | ")[1:] for ln in sel[2:] if ln.startswith("| L = ")]
        cols = len(rows[0]) if rows else 0
        bold = [sum(r[i].strip(" |").startswith("**") for r in rows) for i in range(cols)]
        check(cols == 2 and bold == [1, 1], "fig2_ablation: one selected change per column (%s)"
              % bold)
        check("| selection | final | final |" in body, "fig2_ablation: both selections final")
        check("(per column its selected change, 2 seeds)" in body,
              "fig2_ablation: the selected changes' verdict is over both seeds")
        # part-way through the seeds: seed 1 of one column only; that seed is counted out of
        # the one column it ran, not as if it had missed every column
        g2 = os.path.join(results, "fig2_ablation", "gathered.csv")
        saved = open(g2).read()
        rows = list(csv.DictReader(open(g2, newline="")))
        first = next(tuple(r[k] for k in reproduction.NOISE) for r in rows if r["run.seed"] == "1")
        keep = [r for r in rows if r["run.seed"] != "1"
                or tuple(r[k] for k in reproduction.NOISE) == first]
        with open(g2, "w", newline="") as f:
            w = csv.DictWriter(f, list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(keep)
        part = reproduction.fig2_ablation(
            reproduction.figdata.Root(os.path.join(results, "fig2_ablation")))
        m = re.search(r"\(per seed: (\d+), (\d) of 1 column run\)", part)
        check(m is not None, "fig2_ablation with seed 1 of one column: counted out of that column "
              "(%s)" % [ln for ln in part.splitlines() if "per seed" in ln][-1:])
        open(g2, "w").write(saved)

    # fig1 over several seeds: the first seed's rows and a second seed whose model is OLS (every
    # (OLS, model) SPD 0): that seed is reproduced at every prefix, with Ridge(0.1) closer at none;
    # the table is the mean over the two
    g1 = os.path.join(results, "fig1", "gathered.csv")
    if os.path.exists(g1):
        saved = open(g1).read()
        rows = list(csv.DictReader(open(g1, newline="")))
        cols = list(rows[0])
        rows = [r for r in rows if r["run.seed"] == rows[0]["run.seed"]]
        more = []
        for r in rows:
            r2 = dict(r, **{"run.seed": "99"})
            if r["metric"] == "spd" and {r["a"], r["b"]} == {"OLS", "Transformer"}:
                r2["value"] = "0.0"
            more.append(r2)
        with open(g1, "w", newline="") as f:
            w = csv.DictWriter(f, cols, lineterminator="\n")
            w.writeheader()
            w.writerows(rows + more)
        body = reproduction.fig1(reproduction.figdata.Root(os.path.join(results, "fig1")))
        claim = [ln for ln in body.splitlines() if ln.startswith("| the model is closer to OLS")]
        m = re.search(r"at (\d+) of (\d+) prefixes by the mean over the seeds \(per seed: (\d+), "
                      r"(\d+)\)", claim[0] if claim else "")
        ridge = [ln for ln in body.splitlines() if ln.startswith("| OLS is the closest")]
        check(m is not None and m.group(4) == m.group(2) and m.group(3) != m.group(2)
              and ridge and ridge[0].endswith(", 0) |"),
              "fig1 with two seeds: per-seed counts, the OLS seed at every prefix (%s; %s)" % (
                  claim[0] if claim else body[:200], ridge[0] if ridge else "-"))
        check("mean over the 2 seeds" in body and " ± " in body, "fig1 with two seeds: the table "
              "says it is a mean and gives the spread")
        open(g1, "w").write(saved)

    # fig4_seeds (the quick sweep: 2 seeds): each seed's own ordering in the last column
    b = re.search(r"<!-- gen:fig4_seeds -->\n(.*?)<!-- /gen:fig4_seeds -->", text, re.S)
    if b and "fig4_seeds" in present:
        order = b.group(1).split("| model | MLP beats linear")[-1].split("\n\n")[0]
        rows = order.splitlines()[2:]  # below the header and its rule: one row per model
        check("per seed 0, 1: decodable from (XᵀY, w_OLS), before? |" in b.group(1) and rows
              and all(re.search(r"\(\d+, \d+\) (yes|no), \(\d+, \d+\) (yes|no); \d of 2 \|$", r)
                      for r in rows),
              "fig4_seeds: every model row has both seeds' orderings (%s)" % (rows[:1],))

    # the excess squared error over the Bayes-optimal predictor: ridge at sigma^2/tau^2, least
    # squares without noise; 0 when the model's errors are the Bayes predictor's
    def sq_rows(cell, sigma, tau, errs):
        return [{"cell": cell, "metric": "sq_error", "a": a, "b": "truth", "value": repr(v),
                 "run.task.noise_std": repr(sigma), "run.task.w_std": repr(tau)}
                for a, vs in errs.items() for v in vs]
    rs = sq_rows("c1", 0.5, 1.0, {"Ridge(1/4)": [1.0, 3.0], "Ridge(1)": [0.5, 0.5],
                                  "Transformer": [1.5, 3.5]})
    rs += sq_rows("c2", 0.0, 1.0, {"Lstsq": [2.0, 0.0], "Ridge(1/4)": [0.0, 0.0],
                                   "Transformer": [2.0, 0.0]})
    got = (reproduction.excess_error(rs, "c1"), reproduction.excess_error(rs, "c2"))
    check(got == (0.5, 0.0), "excess error over Ridge(1/4) at sigma^2/tau^2 = 1/4 and over Lstsq "
          "without noise: (0.5, 0.0), got %s" % (got,))

    if failures:
        sys.exit("%d check(s) failed" % len(failures))
    print("all checks passed")


if __name__ == "__main__":
    main()

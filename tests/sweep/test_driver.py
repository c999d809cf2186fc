#!/usr/bin/python3
"""Tests of the sweep driver tools/icl_sweep.py (docs/sweeps.md), standard library only.

    test_driver.py [unittest arguments]             all but RealCell (against fake_cell.py)
    test_driver.py --runner PATH/icl_cell RealCell  the driver with the real cell runner

CTest runs both (tests/sweep/tests.cmake): sweep.driver and, where the icl_cell target exists,
sweep.icl_cell. Most tests drive the command line as a user would (a subprocess per command);
expansion and ids are also checked in-process.
"""
import collections
import csv
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import types
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DRIVER = REPO / "tools" / "icl_sweep.py"
FAKE = HERE / "fake_cell.py"
TINY = HERE / "tiny.toml"
sys.path.insert(0, str(REPO / "tools"))
import icl_sweep as S  # noqa: E402

REAL_CELL = None  # --runner PATH (RealCell)

BASIC = """
name = "basic"
seeds = [0, 1]
[fixed]
"run.steps" = 3
[axes]
"model.layers" = [2, 1]
"""


def drive(*args, cwd=None, env=None, timeout=120):
    e = dict(os.environ)
    e.pop("ICL_CELL", None)
    e.update(env or {})
    return subprocess.run([sys.executable, str(DRIVER), *map(str, args)], cwd=cwd, env=e,
                          capture_output=True, text=True, timeout=timeout)


class Base(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="icl_sweep_test_")
        self.d = Path(self._tmp.name)

    def tearDown(self):
        self._tmp.cleanup()

    def sweep(self, text, name="s.toml"):
        p = self.d / name
        p.write_text(textwrap.dedent(text))
        return p

    def cells(self, path, quick=False, root=None):
        return S.expand(S.load_sweep(path, quick), root or self.d / "root")

    def ok(self, r, status=0):
        self.assertEqual(r.returncode, status, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        self.assertNotIn("Traceback", r.stderr)
        return r

    def run_fake(self, sweep, root, *extra, status=0):
        return self.ok(drive("run", sweep, "--root", root, "--runner", FAKE, "--progress-every",
                             "0.2", *extra), status)

    def attempts(self, cell_dir):
        return json.loads((Path(cell_dir) / "attempts.json").read_text())


class Expansion(Base):
    def test_counts_and_order(self):
        p = self.sweep("""
            name = "x"
            seeds = [1, 0]
            [fixed]
            "run.steps" = 5
            [axes]
            "a" = [4, 1, 2]
            "b" = ["y", "x"]
            [[zip]]
            "z1" = [0.5, 0.25]
            "z2" = ["p", "q"]
        """)
        cells = self.cells(p)
        self.assertEqual(len(cells), 2 * 3 * 2 * 2)
        want = [(a, b, z1, z2, s) for a in (1, 2, 4) for b in ("x", "y")
                for z1, z2 in ((0.25, "q"), (0.5, "p")) for s in (0, 1)]
        self.assertEqual([tuple(v for _, v in c.grid) for c in cells], want)
        self.assertEqual([k for k, _ in cells[0].grid], ["a", "b", "z1", "z2", "run.seed"])
        for c in cells:
            self.assertEqual(c.settings["run.steps"], 5)
            self.assertEqual(c.dir, (self.d / "root" / "cells" / c.id))
            self.assertEqual(c.id, S.cell_id(c.settings))
        self.assertEqual(len({c.id for c in cells}), len(cells))

    def test_zip_groups_cross_each_other(self):
        p = self.sweep("""
            name = "x"
            seeds = [0]
            [[zip]]
            "a" = [1, 2]
            "b" = [1, 1]
            [[zip]]
            "c" = [true, false, true]
            "d" = [1, 2, 3]
        """)
        cells = self.cells(p)
        self.assertEqual(len(cells), 2 * 3)
        got = [tuple(v for _, v in c.grid) for c in cells]
        self.assertEqual(got, [(1, 1, False, 2, 0), (1, 1, True, 1, 0), (1, 1, True, 3, 0),
                               (2, 1, False, 2, 0), (2, 1, True, 1, 0), (2, 1, True, 3, 0)])

    def test_seeds_only(self):
        p = self.sweep('name = "x"\nseeds = [3, 1, 2]\n[fixed]\n"m" = "v"\n')
        cells = self.cells(p)
        self.assertEqual([c.settings for c in cells],
                         [{"m": "v", "run.seed": s} for s in (1, 2, 3)])

    def test_canonical_json_and_id(self):
        d = {"b": 1.0, "a": 0.25, "c": True, "d": "x", "e": 3, "f": 1e-7, "g": -0.0}
        text = '{"a":0.25,"b":1,"c":true,"d":"x","e":3,"f":1e-07,"g":0}'
        self.assertEqual(S.canonical_json(d), text)
        self.assertEqual(S.cell_id(d), hashlib.sha256(text.encode()).hexdigest()[:12])
        self.assertEqual(S.cell_id(d), "d1c545a38f31")  # a change here moves every cell's folder

    def test_ids_stable_when_the_grid_grows(self):
        a = self.sweep(BASIC, "a.toml")
        b = self.sweep("""
            name = "another_name"
            description = "more values"
            seeds = [0, 1, 2]
            [axes]
            "model.layers" = [1, 2, 8]
            [fixed]
            "run.steps" = 3
        """, "b.toml")
        ia = {c.id: c.settings for c in self.cells(a)}
        ib = {c.id: c.settings for c in self.cells(b)}
        self.assertEqual(len(ia), 4)
        self.assertEqual(len(ib), 9)
        self.assertLessEqual(set(ia), set(ib))
        for k, v in ia.items():
            self.assertEqual(ib[k], v)

    def test_int_and_float_are_one_setting(self):
        a = self.sweep('name="x"\nseeds=[0]\n[fixed]\n"w"=1.0\n[[zip]]\n"n"=[0.0, 0.25]\n', "a.toml")
        b = self.sweep('name="x"\nseeds=[0]\n[fixed]\n"w"=1\n[[zip]]\n"n"=[0, 0.25]\n', "b.toml")
        ca, cb = self.cells(a), self.cells(b)
        self.assertEqual([c.id for c in ca], [c.id for c in cb])
        self.assertIs(type(ca[0].settings["w"]), int)
        self.ok(drive("plan", a, "--root", self.d / "r", "--no-check"))
        cfg = json.loads((ca[0].dir.parent.parent.parent / "r" / "cells" / ca[0].id /
                          "config.json").read_text())
        self.assertEqual(cfg, {"sweep": "x", "cell": ca[0].id,
                               "settings": {"n": 0, "run.seed": 0, "w": 1}})
        self.assertIn('"w": 1\n', (self.d / "r" / "cells" / ca[0].id / "config.json").read_text())
        # and the other spelling finds the same folders, unchanged
        self.ok(drive("plan", b, "--root", self.d / "r", "--no-check"))

    def test_quick(self):
        p = self.sweep("""
            name = "q"
            seeds = [0, 1, 2]
            [fixed]
            "run.steps" = 100
            [axes]
            "a" = [1, 2, 3]
            [[zip]]
            "u" = [1, 2]
            "v" = [3, 4]
            [quick]
            fixed = { "run.steps" = 2, "run.task.n" = 4 }
            axes = { "a" = [1] }
            zip = { "u" = [7], "v" = [8] }
            seeds = [5]
        """)
        self.assertEqual(len(self.cells(p)), 3 * 3 * 2)
        q = self.cells(p, quick=True)
        self.assertEqual([c.settings for c in q],
                         [{"a": 1, "u": 7, "v": 8, "run.seed": 5, "run.steps": 2,
                           "run.task.n": 4}])


class DocExample(Base):
    def test_the_docs_sweep_file_is_valid(self):
        text = (REPO / "docs" / "sweeps.md").read_text()
        toml = text.split("```toml\n", 1)[1].split("```", 1)[0]
        p = self.sweep(toml)
        full, quick = self.cells(p), self.cells(p, quick=True)
        self.assertEqual(len(full), 3 * 5 * 2 * 2)
        self.assertEqual(len(quick), 2 * 2)
        self.assertEqual({c.settings["run.steps"] for c in quick}, {20})
        self.assertEqual(S.load_sweep(p).select, {"x": ["model.layers"], "by": "eval_loss", "seeds": None})


class RepositorySweeps(Base):
    def test_every_sweep_file_expands_full_and_quick(self):
        """Every sweeps/*.toml (the figure sweeps and the cluster-only ones, whose full scale no CTest
        runs) loads, is named after its file and expands; the cluster sweep of App. H is the design
        docs/reproduction.md describes."""
        files = sorted((REPO / "sweeps").glob("*.toml"))
        self.assertGreaterEqual(len(files), 10)
        for f in files:
            with self.subTest(sweep=f.name):
                sw = S.load_sweep(f)
                self.assertEqual(sw.name, f.stem)
                self.assertTrue(self.cells(f, root=self.d / f.stem))
                self.assertTrue(self.cells(f, quick=True, root=self.d / (f.stem + "_quick")))
        full = self.cells(REPO / "sweeps" / "fig8_cluster.toml", root=self.d / "f8c")
        self.assertEqual(len(full), 7 * 8 * 3)
        self.assertEqual({c.settings["run.steps"] for c in full}, {24000})
        shapes = {(c.settings["model.layers"], c.settings["model.hidden"], c.settings["model.heads"])
                  for c in full}
        self.assertEqual(shapes, {(1, 64, 4), (2, 64, 4), (4, 64, 4), (8, 64, 4), (16, 64, 4),
                                  (8, 16, 4), (8, 32, 4), (8, 64, 1)})
        # Fig. 2's cluster sweep: depth x training length on every noise column, three seeds; its
        # L = 8, 6,000-step cells are fig2_ablation's (the same ids), so they need not rerun
        f2 = self.cells(REPO / "sweeps" / "fig2_cluster.toml", root=self.d / "f2c")
        self.assertEqual(len(f2), 2 * 2 * 5 * 3)
        self.assertEqual({(c.settings["model.layers"], c.settings["run.steps"]) for c in f2},
                         {(8, 6000), (8, 24000), (16, 6000), (16, 24000)})
        ablation = {c.id for c in self.cells(REPO / "sweeps" / "fig2_ablation.toml",
                                             root=self.d / "f2a")}
        same = {c.id for c in f2
                if (c.settings["model.layers"], c.settings["run.steps"]) == (8, 6000)}
        self.assertEqual(len(same), 15)
        self.assertLessEqual(same, ablation)


class BadSweeps(Base):
    HEAD = 'name = "bad"\nseeds = [0]\n'
    CASES = [
        ("unknown top-level key", HEAD + "foo = 1\n", 'unknown top-level key "foo"'),
        ("no name", 'seeds = [0]\n', "name: expected a string"),
        ("bad name", 'name = "a/b"\nseeds = [0]\n', "name: expected a string"),
        ("no seeds", 'name = "x"\n', "seeds: missing"),
        ("float seed", 'name = "x"\nseeds = [0, 1.5]\n', "seeds[1]: 1.5 is not an integer >= 0"),
        ("repeated seed", 'name = "x"\nseeds = [0, 0]\n', "seeds: seed 0 appears more than once"),
        ("zip lengths", HEAD + '[[zip]]\n"a" = [1, 2]\n"b" = [1]\n',
         'zip[0]: the lists must have one length: "a" has 2, "b" has 1'),
        ("zip as a table", HEAD + '[zip]\n"a" = [1]\n', "zip: a table; expected an array of tables"),
        ("zip position repeats", HEAD + '[[zip]]\n"a" = [1, 1]\n"b" = [2, 2]\n',
         "zip[0]: position 1 repeats position 0"),
        ("empty axis", HEAD + '[axes]\n"a" = []\n', 'axes."a": an empty list'),
        ("axis not a list", HEAD + '[axes]\n"a" = 3\n', 'axes."a": expected a list of values'),
        ("axis value repeats", HEAD + '[axes]\n"a" = [0, 0.0]\n',
         'axes."a": value 0.0 (position 1) repeats 0 (position 0)'),
        ("fixed and axes", HEAD + '[fixed]\n"a" = 1\n[axes]\n"a" = [1, 2]\n',
         'axes."a": the key is also in [fixed]'),
        ("axes and zip", HEAD + '[axes]\n"a" = [1, 2]\n[[zip]]\n"a" = [1, 2]\n',
         'zip[0]."a": the key is also in [axes]'),
        ("two zips", HEAD + '[[zip]]\n"a" = [1]\n[[zip]]\n"a" = [2]\n',
         'zip[1]."a": the key is also in [[zip]] group 0'),
        ("list in fixed", HEAD + '[fixed]\n"a" = [1, 2]\n',
         'fixed."a": a list, expected a number, boolean or string'),
        ("unquoted dotted key", HEAD + '[fixed]\nrun.steps = 1\n',
         'fixed."run": a table, expected a number, boolean or string (a dotted key must be quoted'),
        ("nested list in an axis", HEAD + '[axes]\n"a" = [[1], [2]]\n', 'axes."a"[0]: a list'),
        ("date", HEAD + '[fixed]\n"a" = 1979-05-27\n', 'fixed."a": a date (1979-05-27)'),
        ("nan", HEAD + '[fixed]\n"a" = nan\n', 'fixed."a": nan is not a finite number'),
        ("inline table in an axis", HEAD + '[axes]\n"a" = [{b = 1}]\n', 'axes."a"[0]: a table'),
        ("seed in fixed", HEAD + '[fixed]\n"run.seed" = 3\n',
         'fixed."run.seed": "run.seed" is set by `seeds`'),
        ("seed as an axis", HEAD + '[axes]\n"run.seed" = [3]\n', 'axes."run.seed": "run.seed" is set'),
        ("quick unknown key", HEAD + '[quick]\nfoo = 1\n', "quick.foo: unknown key"),
        ("quick unknown axis", HEAD + '[axes]\n"a" = [1]\n[quick]\naxes = { "b" = [1] }\n',
         'quick.axes."b": not a key of [axes]'),
        ("quick unknown zip key", HEAD + '[[zip]]\n"a" = [1]\n[quick]\nzip = { "b" = [1] }\n',
         'quick.zip."b": not a key of any [[zip]] group'),
        ("quick fixes an axis", HEAD + '[axes]\n"a" = [1]\n[quick]\nfixed = { "a" = 1 }\n',
         'quick.fixed."a": the key is an axis'),
        ("quick breaks a zip", HEAD + '[[zip]]\n"a" = [1]\n"b" = [2]\n[quick]\nzip = { "a" = [1, 2] }\n',
         'zip[0]: the lists must have one length (with [quick] applied): "a" has 2, "b" has 1'),
        ("quick empties an axis", HEAD + '[axes]\n"a" = [1]\n[quick]\naxes = { "a" = [] }\n',
         'axes."a" (with [quick] applied): an empty list'),
        ("quick seeds", HEAD + '[quick]\nseeds = []\n', "quick.seeds: expected a non-empty list"),
        ("select unknown key", HEAD + '[axes]\n"a" = [1]\n[select]\nx = ["a"]\nby = "l"\nz = 1\n',
         "select.z: unknown key"),
        ("select x not an axis", HEAD + '[axes]\n"a" = [1]\n[select]\nx = ["b"]\nby = "l"\n',
         'select.x: "b" is not a key of [axes] or [[zip]]'),
        ("select without by", HEAD + '[axes]\n"a" = [1]\n[select]\nx = ["a"]\n',
         "select.by: expected the name of a metric"),
        ("select seeds empty", HEAD + '[axes]\n"a" = [1]\n[select]\nx = ["a"]\nby = "l"\nseeds = []\n',
         "select.seeds: expected a non-empty list of distinct seeds, got []"),
        ("select seeds not the sweep's", HEAD + '[axes]\n"a" = [1]\n[select]\nx = ["a"]\nby = "l"\n'
         'seeds = [7]\n', "select.seeds: 7 is not one of the sweep's seeds [0]"),
        ("select seeds not quick's", 'name = "bad"\nseeds = [0, 1]\n[axes]\n"a" = [1]\n[select]\n'
         'x = ["a"]\nby = "l"\nseeds = [1]\n[quick]\nseeds = [0]\n',
         "select.seeds: 1 is not one of the sweep's seeds [0] (with [quick] applied)"),
        ("resources not scalar", HEAD + '[resources]\ncpus = [1]\n', "resources.cpus: a list"),
        ("not TOML", 'name = \n', "not a valid TOML file"),
    ]

    def test_each_error_is_named(self):
        for what, text, message in self.CASES:
            with self.subTest(what):
                p = self.sweep(text)
                r = self.ok(drive("plan", p, "--root", self.d / "r", "--no-check"), 2)
                self.assertEqual(r.stderr, f"icl_sweep: {p}: {message}" + r.stderr[
                    len(f"icl_sweep: {p}: {message}"):])
                self.assertTrue(r.stderr.endswith("\n") and r.stderr.count("\n") == 1, r.stderr)
                self.assertFalse((self.d / "r").exists())

    def test_missing_file(self):
        r = self.ok(drive("plan", self.d / "nope.toml", "--no-check"), 2)
        self.assertIn(f"icl_sweep: cannot read the sweep file {self.d / 'nope.toml'}", r.stderr)

    def test_bad_arguments(self):
        p = self.sweep(BASIC)
        for args, message in [(["-P", "0"], "argument -P: expected an integer >= 1, got 0"),
                              (["-T", "x"], "argument -T: expected an integer >= 1, got 'x'"),
                              (["--retries", "-1"], "argument --retries: expected an integer >= 0")]:
            with self.subTest(args):
                r = self.ok(drive("run", p, *args), 2)
                self.assertIn(message, r.stderr)


class Runner(Base):
    def test_no_runner_names_every_place_looked(self):
        tools = self.d / "repo" / "tools"
        tools.mkdir(parents=True)
        shutil.copy(DRIVER, tools)
        p = self.sweep(BASIC)
        r = subprocess.run([sys.executable, str(tools / "icl_sweep.py"), "run", str(p), "--root",
                            str(self.d / "r")], capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != "ICL_CELL"})
        self.ok(r, 2)
        self.assertIn("no cell runner: --runner is not given, $ICL_CELL is not set, and the default "
                      f"{self.d / 'repo' / 'build' / 'examples' / 'icl_cell'} does not exist",
                      r.stderr)

    def test_env_runner(self):
        p = self.sweep(BASIC)
        r = self.ok(drive("run", p, "--root", self.d / "r", env={"ICL_CELL": str(self.d / "no")}), 2)
        self.assertIn(f"icl_sweep: cell runner $ICL_CELL ({self.d / 'no'}): no such file", r.stderr)
        r = self.ok(drive("run", p, "--root", self.d / "r", "-P", "2", env={"ICL_CELL": str(FAKE)}))
        self.assertIn("4 to run", r.stderr)

    def test_runner_not_executable(self):
        f = self.d / "cell"
        f.write_text("")
        r = self.ok(drive("plan", self.sweep(BASIC), "--root", self.d / "r", "--runner", f), 2)
        self.assertIn(f"cell runner --runner {f}: not executable", r.stderr)


class Plan(Base):
    def test_plan_writes_configs_and_checks(self):
        p = self.sweep(BASIC)
        root = self.d / "r"
        r = self.ok(drive("plan", p, "--root", root, "--runner", FAKE))
        cells = self.cells(p, root=root)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["cell", "state", "model.layers", "run.seed"])
        for c, line in zip(cells, lines[1:5]):
            self.assertEqual(line.split(), [c.id, "pending"] + [str(v) for _, v in c.grid])
            cfg = json.loads((c.dir / "config.json").read_text())
            self.assertEqual(cfg, {"sweep": "basic", "cell": c.id, "settings": c.settings})
        self.assertIn("4 cells (4 pending); 4 new config.json files", r.stdout)
        self.assertIn("fake_cell.py --check: 4 cells valid", r.stdout)
        r = self.ok(drive("plan", p, "--root", root, "--runner", FAKE))
        self.assertIn("0 new config.json files", r.stdout)
        self.assertEqual(sorted(os.listdir(cells[0].dir)), ["config.json"])  # no temporary files

    def test_runner_refuses_a_setting(self):
        p = self.sweep(BASIC.replace('"run.steps" = 3', '"run.steps" = 3\n"bad.key" = 1'))
        r = self.ok(drive("plan", p, "--root", self.d / "r", "--runner", FAKE), 2)
        self.assertIn("icl_sweep: fake_cell.py --check refused 4 cells (", r.stderr)
        self.assertEqual(r.stderr.count("fake_cell: unknown setting 'bad.key'"), 1)

    def test_changed_config_is_refused(self):
        p = self.sweep(BASIC)
        root = self.d / "r"
        self.ok(drive("plan", p, "--root", root, "--no-check"))
        c = self.cells(p, root=root)[1]
        cfg = json.loads((c.dir / "config.json").read_text())
        cfg["settings"]["run.steps"] = 7
        cfg["settings"]["extra"] = "x"
        (c.dir / "config.json").write_text(json.dumps(cfg))
        for cmd in (["plan", "--no-check"], ["run", "--runner", FAKE], ["gather"]):
            with self.subTest(cmd[0]):
                r = self.ok(drive(cmd[0], p, "--root", root, *cmd[1:]), 2)
                self.assertIn(f"icl_sweep: cell {c.id}: {c.dir / 'config.json'} differs from the "
                              f"sweep (", r.stderr)
                self.assertIn('settings."extra": folder has "x", not in the sweep; '
                              'settings."run.steps": folder has 7, sweep has 3)', r.stderr)
        self.assertFalse((c.dir / "status.json").exists())  # nothing ran
        r = self.ok(drive("plan", self.sweep(BASIC.replace("basic", "other"), "o.toml"), "--root",
                          root, "--no-check"), 2)
        self.assertIn('sweep: folder has "basic", sweep has "other"', r.stderr)


class Run(Base):
    def test_run_then_skip_done_cells(self):
        p = self.sweep(BASIC)
        root = self.d / "r"
        r = self.run_fake(p, root, "-P", "2", "-T", "3")
        self.assertIn("4 cells: 0 done (skipped), 4 to run, 2 at a time with 3 threads each", r.stderr)
        self.assertIn("cells: 4 done, 0 running, 0 failed, 0 pending | ", r.stderr)
        cells = self.cells(p, root=root)
        logs = {}
        for c in cells:
            a = self.attempts(c.dir)
            self.assertEqual(len(a), 1)
            self.assertEqual((a[0]["executor"], a[0]["exit"], a[0]["threads"], a[0]["error"]),
                             ("local", 0, 3, ""))
            self.assertLessEqual(a[0]["start"], a[0]["end"])
            logs[c.id] = (c.dir / "log.txt").read_text()
            self.assertIn(f"running {c.id} with 3 threads from step 0", logs[c.id])
            self.assertTrue(S.is_done(c.dir))
        r = self.run_fake(p, root)
        self.assertIn("4 cells: 4 done (skipped), 0 to run", r.stderr)
        for c in cells:
            self.assertEqual(len(self.attempts(c.dir)), 1)
            self.assertEqual((c.dir / "log.txt").read_text(), logs[c.id])
        # done without metrics.csv is not done: that cell runs again
        (cells[0].dir / "metrics.csv").unlink()
        r = self.run_fake(p, root)
        self.assertIn("3 done (skipped), 1 to run", r.stderr)
        self.assertEqual(len(self.attempts(cells[0].dir)), 2)

    def test_attempts_record_the_runner_build(self):
        """Every attempt records the runner's path and SHA-256; a cell whose earlier attempts
        recorded another build is run (a rebuilt runner may resume a checkpoint) with a note in
        its log and on the console, and its attempts then name both builds."""
        p = self.sweep('name = "b"\nseeds = [0, 1]\n[fixed]\n"run.steps" = 3\n')
        root = self.d / "r"
        cells = self.cells(p, root=root)
        sha = hashlib.sha256(FAKE.read_bytes()).hexdigest()
        old = "0" * 64   # an earlier attempt by another build, interrupted (exit 75)
        S.prepare(S.load_sweep(p, False), cells)
        S.append_attempt(cells[1].dir, {"executor": "local", "attempt": 1, "exit": 75,
                                        "runner_sha256": old})
        r = self.run_fake(p, root)
        a0, a1 = self.attempts(cells[0].dir), self.attempts(cells[1].dir)
        self.assertEqual([(x["runner"], x["runner_sha256"]) for x in a0], [(str(FAKE), sha)])
        self.assertEqual([x["runner_sha256"] for x in a1], [old, sha])
        self.assertEqual(S.recorded_runners(cells[1].dir), [old, sha])
        note = f"cell {cells[1].id} resumes with another runner build: sha256 {sha[:12]}, its " \
               f"earlier attempts {old[:12]}"
        self.assertIn(note, r.stderr)
        self.assertIn(note, (cells[1].dir / "log.txt").read_text())
        self.assertNotIn("another runner build", (cells[0].dir / "log.txt").read_text())
        self.assertIn(f"(runner sha256 {sha[:12]})", (cells[0].dir / "log.txt").read_text())
        # builds A, B, A: the latest attempt's build is last (a relaunch with A is no change)
        S.append_attempt(cells[0].dir, {"runner_sha256": old})
        S.append_attempt(cells[0].dir, {"runner_sha256": sha})
        self.assertEqual(S.recorded_runners(cells[0].dir), [old, sha])

    def test_only_runs_a_slice(self):
        p = self.sweep(BASIC)
        root = self.d / "r"
        r = self.run_fake(p, root, "--only", "model.layers=1")
        self.assertIn("2 cells: 0 done (skipped), 2 to run", r.stderr)
        for c in self.cells(p, root=root):
            ran = (c.dir / "attempts.json").exists()
            self.assertEqual(ran, c.settings["model.layers"] == 1, c.settings)
            self.assertEqual(S.is_done(c.dir), ran)
        # a setting no cell has is refused by name (a typo would run nothing)
        r = drive("run", p, "--root", root, "--runner", FAKE, "--only", "model.layers=3")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--only model.layers=3: no cell of the sweep has this setting", r.stderr)

    def test_only_keeps_the_selection_over_every_cell(self):
        # staged selection on seed 0 over two rates: --only lr = 0.2 runs that rate's seed-0 cell;
        # its seed-1 cell waits, since the selection also needs lr = 0.1's seed-0 cell, not run
        p = self.sweep('name = "so"\nseeds = [0, 1]\n[fixed]\n"run.steps" = 3\n'
                       '[axes]\n"run.optimizer.lr" = [0.1, 0.2]\n'
                       '[select]\nx = []\nby = "eval_loss"\nseeds = [0]\n')
        root = self.d / "r"
        r = self.run_fake(p, root, "--only", "run.optimizer.lr=0.2", status=1)
        self.assertIn("1 cells still wait for the selection on seeds", r.stderr)
        done = {(c.settings["run.optimizer.lr"], c.settings["run.seed"]): S.is_done(c.dir)
                for c in self.cells(p, root=root)}
        self.assertEqual(done, {(0.1, 0): False, (0.1, 1): False, (0.2, 0): True, (0.2, 1): False})

    def test_order_seeds(self):
        p = self.sweep(BASIC)
        root = self.d / "r"
        self.run_fake(p, root, "-P", "1", "--order", "seeds")
        started = sorted((self.attempts(c.dir)[0]["start"], c.settings["run.seed"],
                          c.settings["model.layers"]) for c in self.cells(p, root=root))
        # one at a time: seed 0's two cells (in cell order: layers 1, then 2) before seed 1's
        self.assertEqual([(s, L) for _, s, L in started], [(0, 1), (0, 2), (1, 1), (1, 2)])
        self.assertEqual([c.settings["run.seed"] for c in S.run_order(self.cells(p), "cells")],
                         [0, 1, 0, 1])
        self.assertEqual([(c.settings["run.seed"], c.settings["model.layers"])
                          for c in S.run_order(self.cells(p), "seeds")], [(0, 1), (0, 2), (1, 1), (1, 2)])

    def test_first_setting_runs_first(self):
        # each cell takes >= 1.2 s, so that the start times (whole seconds) are distinct
        p = self.sweep(BASIC.replace('"run.steps" = 3', '"run.steps" = 2\n"fake.sleep" = 0.6'))
        root = self.d / "r"
        self.run_fake(p, root, "-P", "1", "--first", "model.layers=2")
        started = sorted((self.attempts(c.dir)[0]["start"], c.settings["model.layers"], c.settings["run.seed"])
                         for c in self.cells(p, root=root))
        self.assertEqual([L for _, L, _ in started], [2, 2, 1, 1])
        cells = self.cells(p)
        got = S.run_order(cells, "seeds", [("model.layers", 2)])
        self.assertEqual([(c.settings["model.layers"], c.settings["run.seed"]) for c in got],
                         [(2, 0), (2, 1), (1, 0), (1, 1)])
        got = S.run_order(cells, "cells", [("model.layers", 2), ("run.seed", 1)])
        self.assertEqual([(c.settings["model.layers"], c.settings["run.seed"]) for c in got][0], (2, 1))
        r = self.ok(drive("run", p, "--root", self.d / "r2", "--runner", FAKE, "--first",
                          "model.layers=3"), 2)
        self.assertIn("--first model.layers=3: no cell of the sweep has this setting", r.stderr)
        r = self.ok(drive("run", p, "--root", self.d / "r2", "--runner", FAKE, "--first", "layers"), 2)
        self.assertIn("expected KEY=VALUE, got 'layers'", r.stderr)

    def test_retries_keep_each_error(self):
        p = self.sweep("""
            name = "retry"
            seeds = [0]
            [axes]
            "fake.fail_times" = [0, 2, 3]
        """)
        root = self.d / "r"
        r = self.run_fake(p, root, "-P", "3", "--retries", "2", status=1)
        c0, c2, c3 = self.cells(p, root=root)
        self.assertEqual([x["exit"] for x in self.attempts(c0.dir)], [0])
        a = self.attempts(c2.dir)
        self.assertEqual([(x["exit"], x["error"]) for x in a],
                         [(1, "fake failure 1"), (1, "fake failure 2"), (0, "")])
        self.assertEqual([x["attempt"] for x in a], [1, 2, 3])
        self.assertTrue(S.is_done(c2.dir))
        a = self.attempts(c3.dir)
        self.assertEqual([(x["exit"], x["error"]) for x in a],
                         [(1, "fake failure 1"), (1, "fake failure 2"), (1, "fake failure 3")])
        self.assertFalse(S.is_done(c3.dir))
        self.assertIn(f"icl_sweep: cell {c3.id} failed: exit 1: fake failure 3", r.stderr)
        self.assertIn("cells: 2 done, 0 running, 1 failed, 0 pending", r.stderr)
        log = (c3.dir / "log.txt").read_text()  # stderr and stdout of every attempt
        self.assertEqual(log.count("fake_cell: some noise on stderr"), 3)
        self.assertEqual(log.count("=== icl_sweep local attempt"), 3)
        # a later run tries the failed cell again (its 4th run, which the fake lets succeed)
        r = self.run_fake(p, root, "--retries", "0")
        self.assertIn("2 done (skipped), 1 to run", r.stderr)
        self.assertEqual([x["exit"] for x in self.attempts(c3.dir)], [1, 1, 1, 0])

    def test_config_error_is_not_retried(self):
        p = self.sweep("""
            name = "exit2"
            seeds = [0]
            [axes]
            "fake.exit" = [2, "no"]
        """)
        root = self.d / "r"
        r = self.run_fake(p, root, "--retries", "5", status=1)
        c2, c0 = self.cells(p, root=root)
        self.assertEqual([x["exit"] for x in self.attempts(c0.dir)], [0])
        self.assertEqual([(x["exit"], x["error"]) for x in self.attempts(c2.dir)],
                         [(2, "fake_cell: told to exit 2")])
        self.assertIn(f"cell {c2.id} failed: exit 2 (bad configuration, not retried)", r.stderr)

    def test_exit_0_without_metrics_is_a_failure(self):
        p = self.sweep('name = "z"\nseeds = [0]\n[fixed]\n"fake.exit" = 0\n')
        r = self.run_fake(p, self.d / "r", "--retries", "1", status=1)
        c, = self.cells(p, root=self.d / "r")
        err = "exit 0 but the cell is not done (status.json state 'failed', metrics.csv missing)"
        self.assertEqual([(x["exit"], x["error"]) for x in self.attempts(c.dir)], [(0, err)] * 2)
        self.assertIn(f"cell {c.id} failed: exit 0: {err}", r.stderr)

    def test_crash_by_signal_is_recorded(self):
        p = self.sweep('name = "k"\nseeds = [0]\n[fixed]\n"fake.exit" = -9\n')
        self.run_fake(p, self.d / "r", "--retries", "0", status=1)
        c, = self.cells(p, root=self.d / "r")
        # a Python exit(-9) is status 247; the driver records what the shell would print
        self.assertEqual(self.attempts(c.dir)[0]["exit"], 247)

    def test_interrupted_cells_resume(self):
        p = self.sweep('name = "i"\nseeds = [0]\n[fixed]\n"run.steps" = 3\n'
                       '"fake.interrupt_times" = 2\n')
        root = self.d / "r"
        self.run_fake(p, root, "--retries", "0")
        c, = self.cells(p, root=root)
        self.assertEqual([x["exit"] for x in self.attempts(c.dir)], [75, 75, 0])
        log = (c.dir / "log.txt").read_text()
        for k in (0, 1, 2):
            self.assertIn(f"threads from step {k}", log)

    def test_signalled_driver_stops_and_resumes(self):
        p = self.sweep("""
            name = "sig"
            seeds = [0, 1, 2]
            [fixed]
            "run.steps" = 12
            "fake.sleep" = 0.25
        """)
        root = self.d / "r"
        e = {k: v for k, v in os.environ.items() if k != "ICL_CELL"}
        proc = subprocess.Popen([sys.executable, str(DRIVER), "run", str(p), "--root", str(root),
                                 "--runner", str(FAKE), "-P", "2", "-T", "1"], env=e,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cells = self.cells(p, root=root)
        deadline = time.monotonic() + 30
        while True:
            steps = [(S.read_status(c.dir) or {}).get("step", 0) for c in cells[:2]]
            if all(s >= 1 for s in steps):
                break
            if time.monotonic() > deadline:
                proc.kill()
                self.fail(f"the first two cells did not start within 30 s: {proc.communicate()}")
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 75, err)
        self.assertIn("interrupted; 3 cells not done; run again to resume them", err)
        for c in cells[:2]:
            self.assertEqual(S.read_status(c.dir)["state"], "interrupted")
            self.assertEqual([x["exit"] for x in self.attempts(c.dir)], [75])
        self.assertFalse((cells[2].dir / "attempts.json").exists())  # never launched
        self.run_fake(p, root, "-P", "3")
        for c in cells[:2]:
            self.assertEqual([x["exit"] for x in self.attempts(c.dir)], [75, 0])
            step = json.loads((c.dir / "checkpoint.json").read_text())["step"]
            self.assertGreaterEqual(step, 1)
            self.assertIn(f"threads from step {step}", (c.dir / "log.txt").read_text())
        self.assertTrue(all(S.is_done(c.dir) for c in cells))

    def test_busy_cell_is_left_alone(self):
        p = self.sweep(BASIC)
        root = self.d / "r"
        self.ok(drive("plan", p, "--root", root, "--no-check"))
        c = self.cells(p, root=root)[0]
        fd = os.open(c.dir / ".lock", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            r = self.run_fake(p, root, status=1)
        finally:
            os.close(fd)
        self.assertIn(f"cell {c.id} is busy", r.stderr)
        self.assertFalse((c.dir / "attempts.json").exists())
        self.assertEqual(sum(S.is_done(x.dir) for x in self.cells(p, root=root)), 3)

    def test_siblings_of_one_training_wait_for_it(self):
        # run.adopt_siblings: a cell whose training (model.*, run.*) is running is not started
        # beside it; the next queued cell of another training is, and the waiting one starts when
        # its sibling has finished training
        p = self.sweep("""
            name = "adopt"
            seeds = [0]
            [fixed]
            "run.steps" = 2
            "run.adopt_siblings" = true
            [axes]
            "model.layers" = [1, 2]
            "eval.variant" = [1, 2, 3]
        """)
        cells = self.cells(p)
        ex = S.LocalExecutor(cells, FAKE, 2, 1, 0, 1)
        queue = collections.deque(cells)
        first = ex._next_launchable(queue)
        self.assertEqual((first.settings["model.layers"], first.settings["eval.variant"]), (1, 1))
        ex.running[first.id] = types.SimpleNamespace(cell=first)
        second = ex._next_launchable(queue)  # skips the two other L = 1 cells
        self.assertEqual((second.settings["model.layers"], second.settings["eval.variant"]), (2, 1))
        ex.running[second.id] = types.SimpleNamespace(cell=second)
        self.assertIsNone(ex._next_launchable(queue))  # all four wait
        self.assertEqual(len(queue), 4)
        # the first has written its model file (it evaluates now): its siblings may start
        first.dir.mkdir(parents=True)
        (first.dir / "model.safetensors").write_bytes(b"")
        third = ex._next_launchable(queue)
        self.assertEqual((third.settings["model.layers"], third.settings["eval.variant"]), (1, 2))
        del ex.running[first.id]
        fourth = ex._next_launchable(queue)
        self.assertEqual((fourth.settings["model.layers"], fourth.settings["eval.variant"]), (1, 3))
        self.assertIsNone(ex._next_launchable(queue))  # L = 2's wait for the second
        # without the setting nothing waits
        plain = [S.Cell(c.id, c.dir, dict(c.settings, **{"run.adopt_siblings": False}), c.grid)
                 for c in cells]
        ex = S.LocalExecutor(plain, FAKE, 2, 1, 0, 1)
        queue = collections.deque(plain)
        ex.running[plain[0].id] = types.SimpleNamespace(cell=plain[0])
        self.assertIs(ex._next_launchable(queue), plain[0])
        self.assertIs(ex._next_launchable(queue), plain[1])
        # end to end: every cell runs once and finishes
        root = self.d / "r"
        self.run_fake(p, root, "-P", "2", "-T", "1")
        for c in self.cells(p, root=root):
            self.assertEqual([a["exit"] for a in self.attempts(c.dir)], [0])

    def test_parallel_threads_defaults(self):
        self.assertEqual(S.parallel_threads(None, None, 8), (8, 1))
        self.assertEqual(S.parallel_threads(None, 3, 8), (2, 3))
        self.assertEqual(S.parallel_threads(None, 16, 8), (1, 16))
        self.assertEqual(S.parallel_threads(2, None, 8), (2, 4))
        self.assertEqual(S.parallel_threads(16, None, 8), (16, 1))
        self.assertEqual(S.parallel_threads(3, 5, 8), (3, 5))


class Status(Base):
    def test_status_lines(self):
        p = self.sweep('name = "st"\nseeds = [0]\n[fixed]\n"run.steps" = 3\n'
                       '[axes]\n"fake.exit" = ["no", 1]\n')
        root = self.d / "r"
        r = self.ok(drive("status", p, "--root", root))
        c1, c0 = self.cells(p, root=root)
        self.assertEqual(r.stdout.splitlines()[1].split(), [c1.id, "pending", "-", "-", "1", "0"])
        self.assertIn("2 cells: 2 pending", r.stdout)
        self.run_fake(p, root, "--retries", "0", status=1)
        lines = self.ok(drive("status", p, "--root", root)).stdout.splitlines()
        self.assertEqual(lines[0].split(), ["cell", "state", "step", "loss", "fake.exit", "run.seed"])
        self.assertEqual(lines[1].split(), [c1.id, "failed", "0/3", "1", "1", "0"])
        self.assertEqual(lines[2].split(), [c0.id, "done", "3/3", "0.25", "no", "0"])
        self.assertEqual(lines[3], "2 cells: 1 done, 1 failed")

    def executor_running(self, cells, cell):
        """A LocalExecutor over `cells` whose `cell` runs at 10 steps/s from step 0 of 100."""
        cell.dir.mkdir(parents=True)
        (cell.dir / "status.json").write_text(json.dumps(
            {"state": "running", "step": 0, "steps": 100, "steps_per_s": 10.0}))
        ex = S.LocalExecutor(cells, None, 1, 1, 0, 1.0)
        ex.running = {cell.id: None}
        return ex

    def test_eta_weighs_steps_by_layers(self):
        # a running 1-layer cell at 10 steps/s, 100 steps left, and a 4-layer cell not started
        # (100 steps): 100 + 4 x 100 layer-steps at 10 layer-steps/s is 50 s (by steps alone: 20 s)
        p = self.sweep('name = "eta"\nseeds = [0]\n[fixed]\n"run.steps" = 100\n'
                       '[axes]\n"model.layers" = [1, 4]\n')
        one, four = self.cells(p)
        ex = self.executor_running([one, four], one)
        self.assertTrue(ex.progress([four]).endswith("| 10 steps/s | ETA 0:00:50"),
                        ex.progress([four]))
        ex.done.add(one.id)  # nothing running: no rate, no ETA
        ex.running = {}
        self.assertTrue(ex.progress([four]).endswith("| 0 steps/s | ETA ?"), ex.progress([four]))

    def test_eta_weighs_width(self):
        # a running H = 32 cell at 10 steps/s with 100 steps left, and an H = 256 one not started
        # (100 steps): 100 x 0.57 + 100 x 12 units at 10 x 0.57 units/s is 220.5 s (3:41); by
        # layers alone it would be 20 s
        p = self.sweep('name = "w"\nseeds = [0]\n[fixed]\n"run.steps" = 100\n"model.layers" = 1\n'
                       '[axes]\n"model.hidden" = [32, 256]\n')
        narrow, wide = self.cells(p)
        ex = self.executor_running([narrow, wide], narrow)
        self.assertTrue(ex.progress([wide]).endswith("| 10 steps/s | ETA 0:03:41"),
                        ex.progress([wide]))
        self.assertEqual(S.width_cost(64), 1.0)
        self.assertAlmostEqual(S.width_cost(512), 48.0)   # H^2 beyond the measured widths
        self.assertLess(S.width_cost(8), S.width_cost(16))
        self.assertAlmostEqual(S.cell_cost({"model.layers": 4, "model.hidden": 128,
                                            "run.batch": 32, "run.task.n": 80}), 4 * 3.7)
        self.assertEqual(S.cell_cost({}), 1.0)

    def test_eta_counts_the_waiting_share(self):
        # staged selection over two widths: seed 0 of both runs (100 steps each, one of them at
        # 10 steps/s), the two seed-1 cells wait and one of them will run: 100 + 100 + (100 + 100)/2
        # steps of equal cost at 10 steps/s is 30 s; the line names the waiting cells
        p = self.sweep('name = "st"\nseeds = [0, 1]\n[fixed]\n"run.steps" = 100\n'
                       '[axes]\n"run.optimizer.lr" = [0.1, 0.2]\n'
                       '[select]\nx = []\nby = "eval_loss"\nseeds = [0]\n')
        sweep = S.load_sweep(p, False)
        cells = self.cells(p)
        needed, waiting, dropped = S.stage_plan(sweep, cells)
        self.assertEqual((len(needed), len(waiting), len(dropped)), (2, 2, 0))
        ex = self.executor_running(cells, needed[0])
        ex.waiting = waiting
        ex.waiting_share = S.waiting_shares(sweep, waiting)
        self.assertEqual(sorted(ex.waiting_share.values()), [0.5, 0.5])
        line = ex.progress([needed[1]])
        self.assertIn("1 pending (+2 waiting on the selection) |", line)
        self.assertTrue(line.endswith("| 10 steps/s | ETA 0:00:30"), line)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


class Gather(Base):
    SWEEP = """
        name = "g"
        seeds = [0, 1]
        [fixed]
        "run.steps" = 2
        [axes]
        "model.layers" = [1, 2]
        "run.optimizer.lr" = [0.1, 0.2]
        [[zip]]
        "run.task.noise_std" = [0.0, 0.5]
        "run.task.w_std" = [1.0, 2.0]
        [select]
        x = ["model.layers"]
        by = "eval_loss"
    """

    def test_same_bytes_from_two_roots(self):
        p = self.sweep(self.SWEEP)
        a, b = self.d / "a", self.d / "b"
        self.run_fake(p, a, "-P", "1")
        self.run_fake(p, b, "-P", "3", "-T", "2")
        self.ok(drive("gather", p, "--root", a))
        r = self.ok(drive("gather", p, "--root", b))
        self.assertIn(f"{b / 'gathered.csv'}: 48 rows from 16 cells", r.stdout)
        ga, gb = (a / "gathered.csv").read_bytes(), (b / "gathered.csv").read_bytes()
        self.assertEqual(ga, gb)
        self.assertNotIn(b"\r", ga)
        rows = read_csv(a / "gathered.csv")
        self.assertEqual(rows[0], ["cell", "model.layers", "run.optimizer.lr", "run.task.noise_std",
                                   "run.task.w_std", "run.seed", "selected", "metric", "a", "b",
                                   "layer", "prefix", "value", "ci95"])
        cells = self.cells(p, root=a)
        self.assertEqual(len(rows), 1 + 3 * len(cells))
        for i, c in enumerate(cells):
            metric_rows = read_csv(c.dir / "metrics.csv")[1:]
            for j, m in enumerate(metric_rows):
                row = rows[1 + 3 * i + j]
                self.assertEqual(row[0], c.id)
                self.assertEqual(row[1:6], [S.format_value(v) for _, v in c.grid])
                self.assertEqual(row[7:], m)  # copied as written
        self.assertIn(',note,"a,b",x,,,0.10,\n', ga.decode())  # quoted field, value as written
        self.assertEqual(rows[3][7:], ["note", "a,b", "x", "", "", "0.10", ""])
        self.assertEqual(rows[1][1:6], ["1", "0.1", "0", "1", "0"])
        # every x value (model.layers) has one selected (lr, noise, w) combination, both seeds
        for layers in ("1", "2"):
            sel = {tuple(r[2:5]) for r in rows[1:] if r[1] == layers and r[6] == "1"}
            self.assertEqual(len(sel), 1, (layers, sel))
            self.assertEqual(sum(1 for r in rows[1:] if r[1] == layers and r[6] == "1"), 6)

    def handmade(self, losses, select='x = ["model.layers"]\nby = "eval_loss"'):
        """A sweep whose cells are done by hand: losses[(layers, lr)] = [seed 0, seed 1]."""
        text = textwrap.dedent("""
            name = "h"
            seeds = [0, 1]
            [axes]
            "model.layers" = [1, 2]
            "run.optimizer.lr" = [0.1, 0.2]
        """) + ("[select]\n" + select + "\n" if select else "")
        p = self.sweep(text)
        root = self.d / "r"
        self.ok(drive("plan", p, "--root", root, "--no-check"))
        for c in self.cells(p, root=root):
            loss = losses[(c.settings["model.layers"], c.settings["run.optimizer.lr"])]
            v = loss[c.settings["run.seed"]]
            (c.dir / "metrics.csv").write_text(
                "metric,a,b,layer,prefix,value,ci95\n"
                f"other,,,,,{-v},\n"  # lower, but not the selection's metric
                f"eval_loss,,,,,{v},0.01\n")
            (c.dir / "status.json").write_text('{"state": "done", "step": 1, "steps": 1}')
        return p, root

    def selected(self, root):
        rows = read_csv(root / "gathered.csv")[1:]
        sel = {}
        for r in rows:
            sel.setdefault((r[1], r[2]), set()).add(r[4])
        return {k: v.pop() for k, v in sel.items() if len(v) == 1}, rows

    def test_selection_by_mean_over_seeds(self):
        p, root = self.handmade({
            (1, 0.1): [1.0, 3.0],   # mean 2.0, holds the lowest single value
            (1, 0.2): [1.5, 1.6],   # mean 1.55: selected
            (2, 0.1): [0.5, 0.7],   # mean 0.6: tie, first in cell order: selected
            (2, 0.2): [0.6, 0.6],   # mean 0.6
        })
        self.ok(drive("gather", p, "--root", root))
        sel, rows = self.selected(root)
        self.assertEqual(sel, {("1", "0.1"): "0", ("1", "0.2"): "1",
                               ("2", "0.1"): "1", ("2", "0.2"): "0"})
        self.assertEqual(len(rows), 16)
        # with x = lr, each lr picks its layers
        p, root = self.handmade({(1, 0.1): [1.0, 3.0], (1, 0.2): [1.5, 1.6],
                                 (2, 0.1): [0.5, 0.7], (2, 0.2): [0.6, 0.6]},
                                select='x = ["run.optimizer.lr"]\nby = "eval_loss"')
        self.ok(drive("gather", p, "--root", root))
        self.assertEqual(self.selected(root)[0], {("1", "0.1"): "0", ("1", "0.2"): "0",
                                                  ("2", "0.1"): "1", ("2", "0.2"): "1"})

    def test_selection_empty_x_and_none(self):
        losses = {(1, 0.1): [1, 1], (1, 0.2): [2, 2], (2, 0.1): [0.9, 0.95], (2, 0.2): [3, 3]}
        p, root = self.handmade(losses, select='x = []\nby = "eval_loss"')
        self.ok(drive("gather", p, "--root", root))
        self.assertEqual(self.selected(root)[0], {("1", "0.1"): "0", ("1", "0.2"): "0",
                                                  ("2", "0.1"): "1", ("2", "0.2"): "0"})
        p, root = self.handmade(losses, select=None)
        self.ok(drive("gather", p, "--root", root))
        self.assertEqual(set(self.selected(root)[0].values()), {"1"})

    def test_selection_needs_one_row(self):
        p, root = self.handmade({(1, 0.1): [1, 1], (1, 0.2): [2, 2], (2, 0.1): [1, 1],
                                 (2, 0.2): [3, 3]}, select='x = []\nby = "missing_metric"')
        r = self.ok(drive("gather", p, "--root", root), 2)
        self.assertIn("metrics.csv has 0 rows with metric 'missing_metric'; [select] by = "
                      "'missing_metric' needs exactly one", r.stderr)
        self.assertFalse((root / "gathered.csv").exists())

    def test_bad_metrics_header(self):
        p, root = self.handmade({k: [1, 1] for k in [(1, 0.1), (1, 0.2), (2, 0.1), (2, 0.2)]})
        c = self.cells(p, root=root)[2]
        (c.dir / "metrics.csv").write_text("metric,value\nx,1\n")
        r = self.ok(drive("gather", p, "--root", root), 2)
        self.assertIn(f"cell {c.id}: {c.dir / 'metrics.csv'}: the header must be "
                      "metric,a,b,layer,prefix,value,ci95, got metric,value", r.stderr)

    def test_refuses_unfinished_cells_unless_partial(self):
        p = self.sweep('name = "p"\nseeds = [0, 1]\n[axes]\n"fake.exit" = ["no", 1]\n'
                       '"model.layers" = [1, 2]\n')
        root = self.d / "r"
        self.run_fake(p, root, "--retries", "0", status=1)
        cells = self.cells(p, root=root)
        bad, good = cells[:4], cells[4:]  # ints sort before strings: fake.exit = 1 first
        self.assertEqual([c.settings["fake.exit"] for c in cells], [1] * 4 + ["no"] * 4)
        (good[0].dir / "status.json").unlink()  # as if it never ran
        r = self.ok(drive("gather", p, "--root", root), 1)
        self.assertIn("icl_sweep: gather: 5 of 8 cells are not done (" +
                      "; ".join(f"{c.id} failed" for c in bad) + f"; {good[0].id} pending); run "
                      "them first, or pass --partial", r.stderr)
        self.assertFalse((root / "gathered.csv").exists())
        r = self.ok(drive("gather", p, "--root", root, "--partial"))
        self.assertIn("9 rows from 3 cells (5 cells not done, left out)", r.stdout)
        rows = read_csv(root / "gathered.csv")
        self.assertEqual([r[0] for r in rows[1::3]], [c.id for c in good[1:]])


class Slurm(Base):
    STUB = textwrap.dedent("""
        import json
        import icl_sweep

        def submit(sweep, root, cells, runner, resources, dry_run, max_parallel):
            json.dump({"name": sweep.name, "root": str(root), "cells": [c.id for c in cells],
                       "dirs": [str(c.dir) for c in cells], "runner": str(runner),
                       "resources": resources, "dry_run": dry_run, "max_parallel": max_parallel,
                       "is_cell": all(isinstance(c, icl_sweep.Cell) for c in cells),
                       "is_sweep": isinstance(sweep, icl_sweep.Sweep),
                       "configs": all((c.dir / "config.json").is_file() for c in cells)},
                      open(root / "submitted.json", "w"))
            return 3
    """)

    def tools(self, stub):
        tools = self.d / "repo" / "tools"
        tools.mkdir(parents=True)
        shutil.copy(DRIVER, tools)
        if stub:
            (tools / "icl_sweep_slurm.py").write_text(self.STUB)
        return tools / "icl_sweep.py"

    def test_missing_module(self):
        drv = self.tools(stub=False)
        r = subprocess.run([sys.executable, str(drv), "slurm", str(self.sweep(BASIC)), "--root",
                            str(self.d / "r"), "--runner", str(FAKE), "--dry-run"],
                           capture_output=True, text=True)
        self.ok(r, 2)
        self.assertIn("icl_sweep: slurm: the SLURM executor is not available: "
                      f"{drv.parent / 'icl_sweep_slurm.py'} does not exist", r.stderr)

    def test_submit_call(self):
        drv = self.tools(stub=True)
        p = self.sweep(BASIC + '[resources]\ncpus = 2\nmem = "2G"\n')
        root = self.d / "r"
        self.ok(drive("plan", p, "--root", root, "--no-check"))
        cells = self.cells(p, root=root)
        (cells[1].dir / "metrics.csv").write_text("metric,a,b,layer,prefix,value,ci95\n")
        (cells[1].dir / "status.json").write_text('{"state": "done"}')
        r = subprocess.run([sys.executable, str(drv), "slurm", str(p), "--root", str(root),
                            "--runner", str(FAKE), "-P", "4", "--dry-run"],
                           capture_output=True, text=True)
        # submit returns the job id (the stub: 3); the driver prints it and exits 0
        self.ok(r, 0)
        self.assertIn("submitted job array 3 over 3 cells", r.stdout)
        got = json.loads((root / "submitted.json").read_text())
        self.assertEqual(got, {"name": "basic", "root": str(root),
                               "cells": [cells[i].id for i in (0, 2, 3)],
                               "dirs": [str(cells[i].dir) for i in (0, 2, 3)],
                               "runner": str(FAKE), "resources": {"cpus": 2, "mem": "2G"},
                               "dry_run": True, "max_parallel": 4, "is_cell": True,
                               "is_sweep": True, "configs": True})
        (root / "submitted.json").unlink()
        for c in cells:
            (c.dir / "metrics.csv").write_text("metric,a,b,layer,prefix,value,ci95\n")
            (c.dir / "status.json").write_text('{"state": "done"}')
        r = subprocess.run([sys.executable, str(drv), "slurm", str(p), "--root", str(root),
                            "--runner", str(self.d / "not_built_yet"), "--dry-run"],
                           capture_output=True, text=True)
        self.ok(r)
        self.assertIn("all 4 cells are done; nothing to submit", r.stdout)
        self.assertFalse((root / "submitted.json").exists())


class Staged(Base):
    """[select] seeds = [0]: select on seed 0, then run the other seeds of the selected cells only."""
    SWEEP = """
        name = "st"
        seeds = [0, 1, 2]
        [fixed]
        "run.steps" = 2
        [axes]
        "model.layers" = [1, 2]
        "run.optimizer.lr" = [0.1, 0.2, 0.3]
        [select]
        x = ["model.layers"]
        by = "eval_loss"
        seeds = [0]
    """
    STUB, tools = Slurm.STUB, Slurm.tools  # the stub SLURM executor

    @staticmethod
    def loss(c):
        line = [l for l in (c.dir / "metrics.csv").read_text().splitlines()
                if l.startswith("eval_loss,")][0]
        return float(line.split(",")[5])

    def test_select_on_seed_0_then_run_the_chosen(self):
        p = self.sweep(self.SWEEP)
        root = self.d / "r"
        self.ok(drive("plan", p, "--root", root, "--no-check"))
        r = self.ok(drive("status", p, "--root", root))
        self.assertIn("18 cells: 12 waiting, 6 pending", r.stdout)
        r = self.run_fake(p, root, "-P", "2", "-T", "1")
        self.assertIn("6 to run (12 more wait for the selection on seeds, 0 dropped by it)", r.stderr)
        cells = self.cells(p, root=root)
        chosen = {}
        for L in (1, 2):
            firsts = [c for c in cells if c.settings["model.layers"] == L and c.settings["run.seed"] == 0]
            chosen[L] = min(firsts, key=self.loss).settings["run.optimizer.lr"]
            for c in cells:
                if c.settings["model.layers"] != L:
                    continue
                want = "done" if c.settings["run.seed"] == 0 or \
                    c.settings["run.optimizer.lr"] == chosen[L] else "dropped"
                st = json.loads((c.dir / "status.json").read_text())
                self.assertEqual(st["state"], want, c.settings)
                if want == "dropped":
                    self.assertFalse((c.dir / "attempts.json").exists())
        r = self.ok(drive("status", p, "--root", root))
        self.assertIn("18 cells: 10 done, 8 dropped", r.stdout)
        # gather needs no --partial: the dropped cells are not missing; the chosen configurations
        # are selected at every seed, the others at none
        self.ok(drive("gather", p, "--root", root))
        rows = read_csv(root / "gathered.csv")
        h = rows[0]
        got = {}
        for row in rows[1:]:
            got.setdefault(row[0], (row[h.index("model.layers")], row[h.index("run.optimizer.lr")],
                                    row[h.index("run.seed")], row[h.index("selected")]))
        self.assertEqual(len(got), 10)
        for L, lr, seed, sel in got.values():
            self.assertEqual(sel, "1" if float(lr) == chosen[int(L)] else "0")
        self.assertEqual(sorted(int(s) for L, lr, s, sel in got.values() if sel == "1"),
                         [0, 0, 1, 1, 2, 2])
        # a second run has nothing left to do
        r = self.run_fake(p, root)
        self.assertIn("10 done (skipped), 0 to run (0 more wait for the selection on seeds, 8 "
                      "dropped by it)", r.stderr)

    def test_unfinished_selection_keeps_the_rest_waiting(self):
        p = self.sweep(self.SWEEP)
        root = self.d / "r"
        self.ok(drive("plan", p, "--root", root, "--no-check"))
        cells = self.cells(p, root=root)
        # L = 1's seed-0 cells done by hand (lr 0.2 lowest); L = 2's not
        for c in cells:
            if c.settings["model.layers"] == 1 and c.settings["run.seed"] == 0:
                v = {0.1: 0.5, 0.2: 0.25, 0.3: 0.75}[c.settings["run.optimizer.lr"]]
                (c.dir / "metrics.csv").write_text(f"metric,a,b,layer,prefix,value,ci95\neval_loss,,,,,{v},\n")
                (c.dir / "status.json").write_text('{"state": "done"}')
        needed, waiting, dropped = S.stage_plan(S.load_sweep(p), cells)
        lr = lambda cs: sorted((c.settings["model.layers"], c.settings["run.optimizer.lr"],
                                c.settings["run.seed"]) for c in cs)
        self.assertEqual(lr(dropped), [(1, 0.1, 1), (1, 0.1, 2), (1, 0.3, 1), (1, 0.3, 2)])
        self.assertEqual(lr(waiting), [(2, x, s) for x in (0.1, 0.2, 0.3) for s in (1, 2)])
        self.assertEqual(lr(needed), sorted([(1, x, 0) for x in (0.1, 0.2, 0.3)] + [(1, 0.2, 1), (1, 0.2, 2)]
                                            + [(2, x, 0) for x in (0.1, 0.2, 0.3)]))
        # gather: the waiting cells are missing (not done), the dropped ones are not
        r = self.ok(drive("gather", p, "--root", root), 1)
        self.assertIn("gather: 11 of 14 cells are not done", r.stderr)
        # slurm submits the cells it can run now and says that the rest wait
        drv = self.tools(stub=True)
        r = subprocess.run([sys.executable, str(drv), "slurm", str(p), "--root", str(root),
                            "--runner", str(FAKE), "--dry-run"], capture_output=True, text=True)
        self.ok(r)
        self.assertIn("6 cells wait for the selection on seeds [0]", r.stdout)
        got = json.loads((root / "submitted.json").read_text())
        self.assertEqual(len(got["cells"]), 5)


class Atomic(Base):
    def test_write_atomic(self):
        f = self.d / "x.json"
        S.write_atomic(f, "one")
        S.write_atomic(f, b"two")
        self.assertEqual(f.read_text(), "two")
        self.assertEqual(os.listdir(self.d), ["x.json"])
        S.append_attempt(self.d, {"a": 1})
        S.append_attempt(self.d, {"a": 2})
        self.assertEqual(self.attempts(self.d), [{"a": 1}, {"a": 2}])


class RealCell(Base):
    """The driver and the real cell runner on tests/sweep/tiny.toml: plan checks every cell, two
    roots run with different -P and -T gather the same bytes, a second run skips every cell."""

    def setUp(self):
        if REAL_CELL is None:
            self.skipTest("needs --runner PATH/icl_cell")
        super().setUp()

    def test_tiny_sweep(self):
        a, b = self.d / "a", self.d / "b"
        r = self.ok(drive("plan", TINY, "--root", a, "--runner", REAL_CELL))
        self.assertIn("cells valid", r.stdout)
        self.ok(drive("run", TINY, "--root", a, "--runner", REAL_CELL, "-P", "2", "-T", "1",
                      timeout=600))
        self.ok(drive("run", TINY, "--root", b, "--runner", REAL_CELL, "-P", "1", "-T", "2",
                      timeout=600))
        cells = S.expand(S.load_sweep(TINY), a)
        for c in cells:
            self.assertTrue(S.is_done(c.dir), c.id)
            for f in ("config.json", "status.json", "metrics.csv", "log.txt", "attempts.json"):
                self.assertTrue((c.dir / f).is_file(), (c.id, f))
        r = self.ok(drive("run", TINY, "--root", a, "--runner", REAL_CELL))
        self.assertIn(f"{len(cells)} done (skipped), 0 to run", r.stderr)
        for c in cells:
            self.assertEqual(len(self.attempts(c.dir)), 1)
        self.ok(drive("gather", TINY, "--root", a))
        self.ok(drive("gather", TINY, "--root", b))
        self.assertEqual((a / "gathered.csv").read_bytes(), (b / "gathered.csv").read_bytes())
        self.ok(drive("status", TINY, "--root", a))
        # the fig3 legend's null predictor (examples/icl_cell/cell.hpp zero_predictor) predicts 0:
        # one GD step from w = 0 is linear in its rate (y^ = 2 a x^T X^T Y), so GD(0.02) = 2 GD(0.01)
        # at every prediction, hence MSPD(GD(0.02), Zero) = 4 MSPD(GD(0.01), Zero) and
        # MSPD(GD(0.02), GD(0.01)) = MSPD(GD(0.01), Zero). Both hold to rounding (a few ulps of each
        # prediction in double, squared and averaged: relative 1e-14); 1e-9 leaves room for the
        # summation order and fails on any nonzero null prediction, which moves them by O(1).
        rows = read_csv(a / "gathered.csv")
        head = rows[0]
        ci, mi, ai, bi, vi = (head.index(k) for k in ("cell", "metric", "a", "b", "value"))
        for c in cells:
            m = {(r[ai], r[bi]): float(r[vi]) for r in rows[1:]
                 if r[ci] == c.id and r[mi] == "mspd"}
            self.assertIn(("Transformer", "Zero"), set(m) | {(k[1], k[0]) for k in m}, c.id)
            z2, z1, g = m[("GD(0.02)", "Zero")], m[("GD(0.01)", "Zero")], m[("GD(0.02)", "GD(0.01)")]
            self.assertGreater(z1, 0.0, c.id)
            self.assertAlmostEqual(z2 / (4 * z1), 1.0, delta=1e-9, msg=c.id)
            self.assertAlmostEqual(g / z1, 1.0, delta=1e-9, msg=c.id)


if __name__ == "__main__":
    argv = sys.argv[:]
    if "--runner" in argv:
        i = argv.index("--runner")
        REAL_CELL = str(Path(argv[i + 1]).absolute())
        del argv[i:i + 2]
        sys.argv = argv
    unittest.main(argv=argv)

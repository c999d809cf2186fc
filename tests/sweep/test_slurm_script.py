#!/usr/bin/python3
"""Fast tests of the SLURM executor without a cluster (CTest sweep.slurm_script).

The pure parts of tools/icl_sweep_slurm.py (sbatch options, the batch script, validation) and
submit(dry_run=True); then the batch script itself, run by bash with the environment a SLURM
array task sees, a stand-in cell runner, and a recording `scontrol` on PATH: which cell a task
picks, the thread count, the log, a USR1 or TERM forwarded to the runner (and only one), the
attempt record, the requeue on exit 75 and the exit statuses. The real thing, against a real
one-node cluster, is test_slurm.py.
"""

import io
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent
sys.path.insert(0, str(SOURCE / "tools"))
import icl_sweep_slurm as S  # noqa: E402

RES = {"cpus": 2, "mem": "2G", "time": "02:00:00", "signal_before": 300}

# A stand-in cell runner: records its argv and pid, then sleeps until a signal (exit 75 after
# a short "checkpoint"), or exits with the status in <cell>/exit_with.
STAND_IN = r'''#!/usr/bin/python3
import json, os, signal, sys, time
cell = sys.argv[sys.argv.index("--cell") + 1]
got = []
def h(s, f):
    got.append(signal.Signals(s).name)
    if len(got) > 1:
        os._exit(128 + s)
for s in (signal.SIGUSR1, signal.SIGTERM):
    signal.signal(s, h)
with open(os.path.join(cell, "runner.json"), "w") as f:
    json.dump({"argv": sys.argv[1:], "pid": os.getpid()}, f)
print("stand-in runner on", cell, flush=True)
want = open(os.path.join(cell, "exit_with")).read().strip()
if want != "wait":
    sys.exit(int(want))
end = time.time() + 20
while not got and time.time() < end:
    time.sleep(0.02)
time.sleep(0.3)       # the "checkpoint"; a second signal here exits at once
print("signals", got, flush=True)
with open(os.path.join(cell, "signals.json"), "w") as f:
    json.dump(got, f)
sys.exit(75 if got else 1)
'''

SCONTROL = r'''#!/bin/sh
echo "$*" >> "$SCONTROL_LOG"
exit "${SCONTROL_STATUS:-0}"
'''


class PureParts(unittest.TestCase):
    def test_options(self):
        o = S.sbatch_options("fig3", "/r", 4, 5, RES, 3)
        self.assertEqual(o, ["--job-name=icl-fig3", "--array=0-4%3", "--cpus-per-task=2",
                             "--mem=2G", "--time=02:00:00", "--requeue", "--open-mode=append",
                             "--signal=B:USR1@300", "--output=/r/slurm/array-4_%A_%a.out"])
        o = S.sbatch_options("fig3", "/r", 0, 1, dict(RES, partition="short"), None)
        self.assertIn("--array=0-0", o)
        self.assertEqual(o[-1], "--partition=short")

    def test_defaults(self):
        self.assertEqual(S.validate_resources({}), {"cpus": 1, "mem": "1G", "time": "01:00:00",
                                                    "signal_before": 300})

    def test_refused(self):
        for bad, key in [({"cpus": 0}, "cpus"), ({"cpus": "2"}, "cpus"), ({"mem": "2 GB"}, "mem"),
                         ({"time": "2h"}, "time"), ({"signal_before": -1}, "signal_before"),
                         ({"signal_before": True}, "signal_before"),
                         ({"partition": "a b"}, "partition"), ({"gpus": 1}, "gpus")]:
            with self.assertRaisesRegex(ValueError, key):
                S.validate_resources(bad)
        with self.assertRaisesRegex(ValueError, "at least one cell"):
            S.sbatch_options("x", "/r", 0, 0, RES)
        with self.assertRaisesRegex(ValueError, "max_parallel"):
            S.sbatch_options("x", "/r", 0, 2, RES, 0)
        with self.assertRaisesRegex(ValueError, "name"):
            S.sbatch_options("a b", "/r", 0, 2, RES)
        with self.assertRaisesRegex(ValueError, "one line"):
            S.cells_text(["/a", "/b\nc"])

    def test_script(self):
        with self.assertRaisesRegex(ValueError, "white space"):
            S.batch_script("fig3", "/r oot", 2, 3, "/bin/icl_cell", RES, None)
        text = S.batch_script("fig3", "/r", 2, 3, "/bin/icl cell", RES, None)
        lines = text.split("\n")
        self.assertEqual(lines[0], "#!/bin/bash")
        # sbatch reads #SBATCH lines only before the first command.
        first_cmd = next(i for i, l in enumerate(lines) if l and not l.startswith("#"))
        sb = [l for l in lines if l.startswith("#SBATCH")]
        self.assertTrue(all(lines.index(l) < first_cmd for l in sb))
        self.assertEqual([l[len("#SBATCH "):] for l in sb],
                         S.sbatch_options("fig3", "/r", 2, 3, RES, None))
        self.assertIn("cells=/r/slurm/array-2.cells\n", text)
        self.assertIn("runner='/bin/icl cell'", text)
        r = subprocess.run(["bash", "-n"], input=text, text=True, capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_job_id(self):
        self.assertEqual(S.parse_job_id("123\n"), 123)
        self.assertEqual(S.parse_job_id("77;cluster\n"), 77)
        with self.assertRaises(RuntimeError):
            S.parse_job_id("Submitted batch job 5")


class Cell:   # the driver's Cell: .id, .dir
    def __init__(self, id, dir):
        self.id, self.dir = id, dir


class Sweep:
    name = "quick"


class DryRunAndSubmit(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name) / "root"
        self.cells = []
        for i in range(3):
            d = self.root / "cells" / ("c%d" % i)
            d.mkdir(parents=True)
            (d / "config.json").write_text("{}")
            self.cells.append(("c%d" % i, d))

    def tearDown(self):
        self.tmp.cleanup()

    def test_dry_run_writes_nothing(self):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            r = S.submit({"name": "quick"}, self.root, self.cells, "/x/icl_cell", RES, True, 2)
        self.assertEqual(r, 0)
        self.assertFalse((self.root / "slurm").exists())
        self.assertEqual(out.getvalue(), S.batch_script("quick", self.root, 0, 3, "/x/icl_cell",
                                                         RES, 2))
        self.assertIn("#SBATCH --array=0-2%2", out.getvalue())
        self.assertIn("dry run", err.getvalue())

    def test_driver_objects_and_nothing_pending(self):
        out = io.StringIO()
        with redirect_stdout(out), redirect_stderr(io.StringIO()):
            self.assertEqual(S.submit(Sweep(), self.root, [Cell(c, d) for c, d in self.cells],
                                      Path("/x/icl_cell"), RES, True, None), 0)
            self.assertEqual(S.submit(Sweep(), self.root, [], "/x/icl_cell", RES, False, None), 0)
        self.assertIn("#SBATCH --job-name=icl-quick", out.getvalue())
        self.assertFalse((self.root / "slurm").exists())

    def test_submit_with_recording_sbatch(self):
        # sbatch stand-in: checks the script is complete on disk, prints a job id.
        bindir = Path(self.tmp.name) / "bin"
        bindir.mkdir()
        (bindir / "sbatch").write_text(
            "#!/bin/sh\n[ \"$1\" = --parsable ] || exit 9\nbash -n \"$2\" || exit 8\n"
            "echo \"$2\" >> %s/sbatch.log\necho 4242\n" % self.tmp.name)
        (bindir / "sbatch").chmod(0o755)
        old = os.environ["PATH"]
        os.environ["PATH"] = "%s:%s" % (bindir, old)
        try:
            with redirect_stdout(io.StringIO()):
                self.assertEqual(S.submit({"name": "q"}, self.root, self.cells, "/x/r", RES), 4242)
                self.assertEqual(S.submit({"name": "q"}, self.root, self.cells[1:], "/x/r", RES),
                                 4242)
        finally:
            os.environ["PATH"] = old
        sd = self.root / "slurm"
        self.assertEqual(sorted(p.name for p in sd.iterdir()),
                         ["array-0.cells", "array-0.job", "array-0.sh",
                          "array-1.cells", "array-1.job", "array-1.sh"])
        self.assertEqual((sd / "array-0.cells").read_text(),
                         "".join("%s\n" % d for _, d in self.cells))
        self.assertEqual((sd / "array-1.cells").read_text().count("\n"), 2)
        self.assertEqual((sd / "array-0.job").read_text(), "4242\n")
        self.assertTrue(os.access(sd / "array-1.sh", os.X_OK))
        self.assertIn("#SBATCH --array=0-1\n", (sd / "array-1.sh").read_text())

    def test_submit_refuses_cell_without_config(self):
        (self.cells[1][1] / "config.json").unlink()
        with self.assertRaisesRegex(ValueError, "c1"):
            S.submit({"name": "q"}, self.root, self.cells, "/x/r", RES)
        self.assertFalse((self.root / "slurm").exists())


class BatchScriptUnderBash(unittest.TestCase):
    """The batch script run by bash as SLURM would run one array task."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        t = Path(self.tmp.name)
        self.root = t / "root"
        self.cells = []
        for i in range(3):
            d = self.root / "cells" / ("c%d" % i)
            d.mkdir(parents=True)
            (d / "config.json").write_text("{}")
            self.cells.append(d)
        (t / "bin").mkdir()
        (t / "bin" / "scontrol").write_text(SCONTROL)
        (t / "bin" / "scontrol").chmod(0o755)
        self.runner = t / "runner.py"
        self.runner.write_text(STAND_IN)
        self.runner.chmod(0o755)
        sd = self.root / "slurm"
        sd.mkdir()
        (sd / "array-0.cells").write_text(S.cells_text(self.cells))
        self.script = sd / "array-0.sh"
        self.script.write_text(S.batch_script("q", self.root, 0, 3, str(self.runner), RES))
        self.env = dict(os.environ, PATH="%s:%s" % (t / "bin", os.environ["PATH"]),
                        SCONTROL_LOG=str(t / "scontrol.log"), SLURM_ARRAY_JOB_ID="900",
                        SLURM_JOB_ID="903", SLURM_CPUS_PER_TASK="2")

    def tearDown(self):
        self.tmp.cleanup()

    def start(self, task, exit_with, restart=None, **env):
        cell = self.cells[task]
        (cell / "exit_with").write_text(exit_with)
        e = dict(self.env, SLURM_ARRAY_TASK_ID=str(task), **env)
        if restart is not None:
            e["SLURM_RESTART_COUNT"] = str(restart)
        return cell, subprocess.Popen(["bash", str(self.script)], env=e, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)

    def wait_runner(self, cell):
        end = time.time() + 10
        while not (cell / "runner.json").exists():
            self.assertLess(time.time(), end, "the runner did not start")
            time.sleep(0.02)
        time.sleep(0.1)   # its signal handlers are installed before runner.json is written

    def attempts(self, cell):
        return [json.loads(l) for l in (cell / "slurm_attempts.jsonl").read_text().splitlines()]

    def test_done(self):
        cell, p = self.start(1, "0")
        p.communicate(timeout=20)
        self.assertEqual(p.returncode, 0)
        r = json.loads((cell / "runner.json").read_text())
        self.assertEqual(r["argv"], ["--cell", str(cell), "--threads", "2"])
        log = (cell / "log.txt").read_text()
        self.assertIn("stand-in runner on %s" % cell, log)
        self.assertRegex(log, r"slurm 900_1 \(restart 0\): start on ")
        a = self.attempts(cell)
        self.assertEqual(len(a), 1)
        self.assertEqual({k: a[0][k] for k in ("job", "job_id", "array_job_id", "task", "restart",
                                               "exit", "signal", "action", "array")},
                         {"job": "900_1", "job_id": 903, "array_job_id": 900, "task": 1,
                          "restart": 0, "exit": 0, "signal": "", "action": "exit", "array": 0})
        # the build that ran it and its threads (the gather's provenance and core-hours)
        self.assertEqual(a[0]["threads"], 2)
        self.assertEqual(a[0]["runner_sha256"],
                         hashlib.sha256(self.runner.read_bytes()).hexdigest())
        self.assertIn("(runner sha256 %s)" % a[0]["runner_sha256"][:12], log)
        self.assertFalse((Path(self.tmp.name) / "scontrol.log").exists())

    def test_statuses_pass_through(self):
        for status in ("1", "2"):
            cell, p = self.start(0, status, restart=3)
            p.communicate(timeout=20)
            self.assertEqual(p.returncode, int(status))
            self.assertEqual(self.attempts(cell)[-1]["exit"], int(status))
            self.assertEqual(self.attempts(cell)[-1]["restart"], 3)
        self.assertEqual(len(self.attempts(cell)), 2)   # appended, one line per attempt

    def signalled(self, sig, twice=False, scontrol_status="0"):
        cell, p = self.start(2, "wait", SCONTROL_STATUS=scontrol_status)
        self.wait_runner(cell)
        p.send_signal(sig)
        if twice:
            time.sleep(0.05)
            p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=20)
        return cell, p.returncode, out

    def test_usr1_forwarded_and_requeued(self):
        cell, rc, out = self.signalled(signal.SIGUSR1)
        self.assertEqual(rc, 0, out)
        self.assertEqual(json.loads((cell / "signals.json").read_text()), ["SIGUSR1"])
        self.assertEqual((Path(self.tmp.name) / "scontrol.log").read_text(), "requeue 900_2\n")
        a = self.attempts(cell)
        self.assertEqual((a[0]["exit"], a[0]["signal"], a[0]["action"]), (75, "USR1", "requeue"))
        self.assertIn("got SIGUSR1", (cell / "log.txt").read_text())

    def test_term_forwarded(self):
        cell, rc, _ = self.signalled(signal.SIGTERM)
        self.assertEqual(rc, 0)
        self.assertEqual(json.loads((cell / "signals.json").read_text()), ["SIGTERM"])
        self.assertEqual(self.attempts(cell)[0]["signal"], "TERM")

    def test_only_one_signal_forwarded(self):
        # USR1 then TERM to the shell: the runner sees USR1 only and finishes its checkpoint.
        cell, rc, _ = self.signalled(signal.SIGUSR1, twice=True)
        self.assertEqual(rc, 0)
        self.assertEqual(json.loads((cell / "signals.json").read_text()), ["SIGUSR1"])
        self.assertIn("already forwarded SIGUSR1: not forwarded", (cell / "log.txt").read_text())

    def test_requeue_failure_exits_75(self):
        cell, rc, _ = self.signalled(signal.SIGUSR1, scontrol_status="1")
        self.assertEqual(rc, 75)
        self.assertIn("requeue 900_2 failed", (cell / "log.txt").read_text())

    def test_no_cell_for_task(self):
        e = dict(self.env, SLURM_ARRAY_TASK_ID="7")
        r = subprocess.run(["bash", str(self.script)], env=e, capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("no cell folder on line 8", r.stderr)


class DriverDryRun(unittest.TestCase):
    """tools/icl_sweep.py slurm --dry-run (skipped where the driver is not in this checkout)."""

    def test_driver_dry_run(self):
        driver = SOURCE / "tools" / "icl_sweep.py"
        if not driver.exists():
            self.skipTest("tools/icl_sweep.py is not in this checkout")
        with tempfile.TemporaryDirectory() as t:
            def dry_run(*extra):
                r = subprocess.run([sys.executable, str(driver), "slurm",
                                    str(HERE / "slurm_quick.toml"), "--root", t, "--dry-run",
                                    "--runner", "/nonexistent/icl_cell", *extra],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                return r
            r = dry_run("-P", "2")
            self.assertRegex(r.stdout, r"#SBATCH --array=0-3%2\n")
            self.assertIn("#SBATCH --job-name=icl-slurm_quick\n", r.stdout)
            self.assertIn("#SBATCH --signal=B:USR1@", r.stdout)
            self.assertFalse((Path(t) / "slurm").exists())
            # --only: an array over the matching cells alone
            r = dry_run("--only", "model.layers=2")
            self.assertRegex(r.stdout, r"#SBATCH --array=0-1\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)

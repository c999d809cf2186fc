#!/usr/bin/python3
"""CTest sweep.slurm: the SLURM executor against a real one-node SLURM cluster.

    test_slurm.py --runner BUILD/examples/icl_cell [--work DIR] [--driver tools/icl_sweep.py]

1. Starts a cluster (slurm_cluster.py: munged, slurmctld, slurmd in a temporary folder).
2. `icl_sweep.py slurm tests/sweep/slurm_quick.toml --root WORK/slurm_root` submits the four
   cells as one job array.
3. Preempts the long cell mid-run: once its status.json shows a step > 0 and its checkpoint
   exists, `scancel --signal=USR1 --batch JOB_TASK` (what --signal=B:USR1@T does before the
   time limit). The batch script forwards USR1 to the runner, which checkpoints and exits 75;
   the script requeues the task. SLURM holds a requeued task back (PENDING, Reason=BeginTime)
   for about two minutes; the test releases it with `scontrol update jobid=JOB_TASK
   StartTime=now`.
4. Waits (bounded) for the array to finish; checks every cell is done, that the long cell ran
   twice (slurm_attempts.jsonl: exit 75 after USR1, then 0 with SLURM_RESTART_COUNT 1) and
   resumed from a step > 0 (log.txt: "resumed ... at step K"), and that SLURM shows every task
   COMPLETED.
5. Gathers; runs the same sweep with the local executor in a second root, gathers, and
   compares the two gathered.csv files byte for byte.
6. The quick versions of the figure sweeps (sweeps/fig1.toml ... fig4.toml; --figures): all
   submitted at once with `slurm --quick` (one array each, --threads from [resources] cpus),
   waited for, every task COMPLETED and every cell done (a sweep with a staged selection, fig3:
   `slurm` again for the chosen configurations' other seeds, a second array, as docs/sweeps.md
   says to); gathered; run again with the local
   executor (-P 2 -T 1) and gathered; each figure's two gathered.csv files compared byte for byte.
The cluster is stopped on every path: finally, SIGTERM/SIGINT/SIGHUP handlers, and a watcher
process that stops it if this process dies without either (CTest kills a test at its TIMEOUT).
Without slurm-wlm and munge the test fails, naming them.
"""

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent
sys.path.insert(0, str(HERE))
import slurm_cluster  # noqa: E402

SWEEP = HERE / "slurm_quick.toml"
FIGURES = "fig1,fig2,fig3,fig4"
T0 = time.monotonic()


def log(msg):
    print("[%6.1f s] %s" % (time.monotonic() - T0, msg), flush=True)


class Failure(Exception):
    pass


class Stopped(BaseException):
    pass


def _on_signal(signum, frame):
    raise Stopped("signal %d" % signum)


def run(cmd, env, timeout=120, check=True):
    r = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise Failure("%s: exit status %d\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(str(c) for c in cmd), r.returncode, r.stdout, r.stderr))
    return r


def run_group(cmd, env, timeout):
    """Run cmd (the local executor, which starts cell runners) in its own process group; on a
    timeout or a signal to this test, TERM the driver (it stops its runners), then KILL the
    group: no runner outlives the test."""
    p = subprocess.Popen([str(c) for c in cmd], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except BaseException:
        p.terminate()
        try:
            p.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        raise
    if p.returncode != 0:
        raise Failure("%s: exit status %d\n%s" % (" ".join(str(c) for c in cmd), p.returncode,
                                                 out))
    return out


def wait_for(what, pred, timeout, diag, step=0.2):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise Failure("timed out after %.0f s waiting for %s\n%s" % (timeout, what, diag()))
        time.sleep(step)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runner", required=True, help="the cell runner (icl_cell)")
    ap.add_argument("--driver", default=str(SOURCE / "tools" / "icl_sweep.py"))
    ap.add_argument("--work", help="work folder (default: a new temporary folder)")
    ap.add_argument("--figures", default=FIGURES,
                    help="the figure sweeps (sweeps/NAME.toml) whose quick versions must gather "
                         "the same bytes through both executors (default %(default)s; '' for none)")
    ap.add_argument("--sweeps", default=str(SOURCE / "sweeps"), help="the figure sweeps' folder")
    ap.add_argument("--deadline", type=float, default=480,
                    help="seconds for the whole test (below CTest's TIMEOUT: the test stops "
                         "its cluster itself)")
    a = ap.parse_args()
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)

    miss = slurm_cluster.missing_programs()
    if miss:
        print("FAIL: SLURM is not installed: missing %s. Install with "
              "'apt-get install -y slurm-wlm munge' (the README's install line)."
              % ", ".join(miss), file=sys.stderr)
        return 1
    runner = Path(a.runner).resolve()
    driver = Path(a.driver).resolve()
    figures = [Path(a.sweeps).resolve() / ("%s.toml" % f) for f in a.figures.split(",") if f]
    for p, what in [(runner, "the cell runner"), (driver, "the driver")] + \
            [(f, "the figure sweep") for f in figures]:
        if not p.exists():
            print("FAIL: %s %s does not exist" % (what, p), file=sys.stderr)
            return 1
    work = Path(a.work).resolve() if a.work else Path(tempfile.mkdtemp(prefix="icl-slurm-test-"))
    work.mkdir(parents=True, exist_ok=True)

    # A cluster left running by an earlier run that was killed: stop it first.
    record = work / "cluster_dir"
    if record.exists():
        old = record.read_text().strip()
        if old and os.path.exists(old):
            log("stopping the cluster of an earlier run in %s" % old)
            slurm_cluster.stop(old)
    for sub in ["slurm_root", "local_root", "figures_slurm", "figures_local"]:
        subprocess.run(["rm", "-rf", str(work / sub)], check=True)
    # A short path: the munge socket's path must fit a sockaddr_un (108 bytes).
    cdir = tempfile.mkdtemp(prefix="icl-slurm-")
    record.write_text(cdir + "\n")
    watcher = subprocess.Popen([sys.executable, str(HERE / "slurm_cluster.py"), "watch", cdir,
                                str(os.getpid()), str(a.deadline + 60)],
                               start_new_session=True, stdin=subprocess.DEVNULL)
    try:
        t = slurm_cluster.start(cdir)
        log("cluster in %s: node idle after %.1f s" % (cdir, t))
        env = slurm_cluster.env(cdir)
        body(env, cdir, runner, driver, work, T0 + a.deadline)
        if figures:
            figure_sweeps(env, cdir, runner, driver, work, figures, T0 + a.deadline)
        log("PASS")
        return 0
    except Failure as ex:
        print("FAIL: %s" % ex, file=sys.stderr)
        return 1
    except Stopped as ex:
        print("FAIL: stopped by %s" % ex, file=sys.stderr)
        return 1
    finally:
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)   # nothing interrupts the stop
        t1 = time.monotonic()
        slurm_cluster.stop(cdir)
        log("cluster stopped in %.1f s" % (time.monotonic() - t1))
        try:
            watcher.wait(timeout=5)
        except subprocess.TimeoutExpired:
            watcher.kill()
            watcher.wait()


def body(env, cdir, runner, driver, work, deadline):
    def left():
        return max(5.0, deadline - time.monotonic())

    py = sys.executable
    r1, r2 = work / "slurm_root", work / "local_root"
    runner_sha = hashlib.sha256(Path(runner).read_bytes()).hexdigest()  # every attempt records it

    def diag():
        out = []
        for cmd in (["squeue", "-a", "-o", "%i %T %r %M"], ["scontrol", "show", "job"]):
            out.append("$ %s\n%s" % (" ".join(cmd), run(cmd, env, check=False).stdout))
        out.append("slurmctld log (tail):\n" + slurm_cluster.log_tail(cdir, "slurmctld"))
        out.append("slurmd log (tail):\n" + slurm_cluster.log_tail(cdir, "slurmd", 20))
        for d in sorted((r1 / "cells").glob("*")):
            try:
                tail = "".join(open(d / "log.txt").readlines()[-6:])
            except OSError:
                tail = "(no log.txt)"
            out.append("cell %s status %s\n%s" % (d.name, read_json(d / "status.json"), tail))
        return "\n".join(out)

    # -- submit ---------------------------------------------------------------------------------
    r = run([py, driver, "slurm", SWEEP, "--root", r1, "--runner", runner], env, timeout=60,
            check=False)
    log("icl_sweep.py slurm: exit %d: %s" % (r.returncode, (r.stdout + r.stderr).strip()))
    if r.returncode != 0:
        raise Failure("icl_sweep.py slurm exited %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
    job_file = r1 / "slurm" / "array-0.job"
    if not job_file.exists():
        raise Failure("no %s after submitting" % job_file)
    job = int(job_file.read_text())
    cells = (r1 / "slurm" / "array-0.cells").read_text().splitlines()
    if len(cells) < 4:
        raise Failure("expected at least 4 cells in the array, got %d" % len(cells))
    steps = [read_json(Path(c) / "config.json")["settings"]["run.steps"] for c in cells]
    task = max(range(len(cells)), key=lambda i: steps[i])
    long_cell = Path(cells[task])
    jt = "%d_%d" % (job, task)
    log("job %d: %d tasks; the long cell %s (%d steps) is task %d"
        % (job, len(cells), long_cell.name, steps[task], task))

    # -- preempt the long cell mid-run -----------------------------------------------------------
    def mid_run():
        st = read_json(long_cell / "status.json") or {}
        if st.get("state") == "done" or (long_cell / "metrics.csv").exists():
            raise Failure("the long cell finished before it could be preempted: give it more "
                          "steps in %s" % SWEEP)
        return (st.get("step") or 0) > 0 and (long_cell / "checkpoint.safetensors").exists() \
            and st
    st = wait_for("the long cell to write a checkpoint", mid_run, min(180, left()), diag, 0.05)
    log("long cell at step %s of %s with a checkpoint: scancel --signal=USR1 --batch %s"
        % (st.get("step"), st.get("steps"), jt))
    run(["scancel", "--signal=USR1", "--batch", jt], env)

    def pending_begin():
        s = run(["squeue", "-h", "-j", jt, "-o", "%T %r"], env, check=False).stdout.strip()
        return s if s.startswith("PENDING") and "BeginTime" in s else None
    wait_for("task %s to be requeued (PENDING, BeginTime)" % jt, pending_begin,
             min(60, left()), diag)
    log("task %s requeued: PENDING BeginTime" % jt)
    # Releasing in the second of the requeue failed here ("Job credential revoked": slurmd
    # refuses credentials not newer than the revocation): wait until the next second or two.
    time.sleep(2.0)

    def released():
        s = run(["squeue", "-h", "-j", jt, "-o", "%T %r"], env, check=False).stdout.strip()
        if s.startswith("PENDING") and "BeginTime" in s:
            run(["scontrol", "update", "jobid=%s" % jt, "StartTime=now"], env)
            return False
        return True
    wait_for("task %s to leave BeginTime" % jt, released, min(30, left()), diag, 2.0)
    log("released %s (scontrol update StartTime=now)" % jt)

    # -- wait for the array ----------------------------------------------------------------------
    wait_for("job array %d to finish" % job,
             lambda: not run(["squeue", "-h", "-j", str(job)], env, check=False).stdout.strip(),
             left(), diag, 0.5)
    log("job array %d finished" % job)

    # -- checks ------------------------------------------------------------------------------------
    show = run(["scontrol", "-o", "show", "job", str(job)], env).stdout
    states = re.findall(r"JobState=(\S+)", show)
    if len(states) != len(cells) or set(states) != {"COMPLETED"}:
        raise Failure("expected %d COMPLETED tasks, scontrol show job says %s\n%s"
                      % (len(cells), states, diag()))
    problems = []
    for i, c in enumerate(cells):
        c = Path(c)
        st = read_json(c / "status.json") or {}
        if st.get("state") != "done" or not (c / "metrics.csv").exists():
            problems.append("cell %s not done: %s" % (c.name, st))
        try:
            att = [json.loads(l) for l in open(c / "slurm_attempts.jsonl")]
        except (OSError, ValueError) as ex:
            problems.append("cell %s: slurm_attempts.jsonl: %s" % (c.name, ex))
            continue
        want = 2 if i == task else 1
        if len(att) != want:
            problems.append("cell %s: %d attempts, expected %d: %s" % (c.name, len(att), want, att))
            continue
        if any(x["job"] != "%d_%d" % (job, i) or x["task"] != i for x in att):
            problems.append("cell %s: attempts of another task: %s" % (c.name, att))
        if any(x.get("runner_sha256") != runner_sha for x in att):
            problems.append("cell %s: attempts without the runner's sha256 %s: %s"
                            % (c.name, runner_sha, att))
        if att[-1]["exit"] != 0 or att[-1]["restart"] != want - 1:
            problems.append("cell %s: last attempt %s" % (c.name, att[-1]))
        if i == task and (att[0]["exit"], att[0]["signal"], att[0]["action"], att[0]["restart"]) \
                != (75, "USR1", "requeue", 0):
            problems.append("long cell: first attempt %s, expected exit 75 after USR1, "
                            "requeue, restart 0" % att[0])
    text = (long_cell / "log.txt").read_text(errors="replace")
    m = re.search(r"resumed .* at step (\d+)", text)
    if not m or int(m.group(1)) <= 0:
        problems.append("long cell: no 'resumed ... at step K > 0' in its log.txt:\n" + text)
    else:
        log("long cell resumed at step %s" % m.group(1))
    if "got SIGUSR1" not in text:
        problems.append("long cell: the batch script did not log the USR1")
    if problems:
        raise Failure("\n".join(problems) + "\n" + diag())

    # -- gather, and the same sweep on this machine ------------------------------------------------
    run([py, driver, "gather", SWEEP, "--root", r1], env)
    t = time.monotonic()
    run_group([py, driver, "run", SWEEP, "--root", r2, "--runner", runner, "-P", "2", "-T", "1"],
              env, left())
    log("local executor: %.1f s" % (time.monotonic() - t))
    run([py, driver, "gather", SWEEP, "--root", r2], env)
    g1, g2 = (r1 / "gathered.csv").read_bytes(), (r2 / "gathered.csv").read_bytes()
    if g1 != g2:
        raise Failure("gathered.csv differs between the SLURM and the local executor:\n"
                      "--- slurm\n%s\n--- local\n%s" % (g1.decode(), g2.decode()))
    log("gathered.csv: %d rows, identical from both executors" % (g1.count(b"\n") - 1))


def figure_sweeps(env, cdir, runner, driver, work, sweeps, deadline):
    """The quick figure sweeps through SLURM and through the local executor: the same bytes."""
    def left():
        return max(5.0, deadline - time.monotonic())

    py = sys.executable
    t = time.monotonic()

    def submit(sw):
        """Submits the cells of sw that can run now; (job id, tasks, whether cells wait for a
        staged selection), or None when there is nothing to submit."""
        root = work / "figures_slurm" / sw.stem
        before = set((root / "slurm").glob("array-*.job")) if (root / "slurm").exists() else set()
        r = run([py, driver, "slurm", sw, "--quick", "--root", root, "--runner", runner], env,
                timeout=60, check=False)
        if r.returncode != 0:
            raise Failure("icl_sweep.py slurm %s --quick exited %d\n%s%s"
                          % (sw, r.returncode, r.stdout, r.stderr))
        new = sorted(set((root / "slurm").glob("array-*.job")) - before)
        waits = "wait for the selection" in r.stdout
        if not new:
            if "nothing to submit" in r.stdout:
                return None
            raise Failure("no new array-*.job under %s after submitting %s" % (root / "slurm", sw))
        job_file = new[-1]
        cells_file = job_file.with_suffix(".cells")
        return int(job_file.read_text()), len(cells_file.read_text().splitlines()), waits

    def diag():
        out = []
        for cmd in (["squeue", "-a", "-o", "%i %T %r %M"], ["scontrol", "show", "job"]):
            out.append("$ %s\n%s" % (" ".join(cmd), run(cmd, env, check=False).stdout))
        out.append("slurmctld log (tail):\n" + slurm_cluster.log_tail(cdir, "slurmctld"))
        for sw in sweeps:
            for d in sorted((work / "figures_slurm" / sw.stem / "cells").glob("*")):
                try:
                    tail = "".join(open(d / "log.txt").readlines()[-6:])
                except OSError:
                    tail = "(no log.txt)"
                out.append("%s cell %s status %s\n%s" % (sw.stem, d.name,
                                                         read_json(d / "status.json"), tail))
        return "\n".join(out)

    # stage by stage: a sweep with a staged selection ([select] seeds, fig3) submits its other
    # seeds' cells of the chosen configurations in a second array, once the first one is done
    todo, stage = list(sweeps), 0
    while todo:
        jobs = {}
        for sw in todo:
            sub = submit(sw)
            if sub is None:
                if stage == 0:
                    raise Failure("%s: nothing submitted at the first stage" % sw)
                continue
            jobs[sw] = sub
        if not jobs:
            break
        log("figure sweeps submitted (stage %d): %s" % (stage, ", ".join(
            "%s: job %d (%d cells)" % (sw.stem, j, n) for sw, (j, n, _) in jobs.items())))
        ids = ",".join(str(j) for j, _, _ in jobs.values())
        wait_for("the figure arrays %s to finish" % ids,
                 lambda: not run(["squeue", "-h", "-j", ids], env, check=False).stdout.strip(),
                 left(), diag, 0.5)
        for sw, (job, n, _) in jobs.items():
            show = run(["scontrol", "-o", "show", "job", str(job)], env).stdout
            states = re.findall(r"JobState=(\S+)", show)
            if len(states) != n or set(states) != {"COMPLETED"}:
                raise Failure("%s: expected %d COMPLETED tasks, scontrol show job says %s\n%s"
                              % (sw.stem, n, states, diag()))
        todo = [sw for sw, (_, _, waits) in jobs.items() if waits]
        stage += 1
    log("figure arrays finished in %.1f s (%d stages)" % (time.monotonic() - t, stage))
    for sw in sweeps:
        run([py, driver, "gather", sw, "--quick", "--root", work / "figures_slurm" / sw.stem], env)
    t = time.monotonic()
    for sw in sweeps:
        root = work / "figures_local" / sw.stem
        run_group([py, driver, "run", sw, "--quick", "--root", root, "--runner", runner,
                   "-P", "2", "-T", "1"], env, left())
        run([py, driver, "gather", sw, "--quick", "--root", root], env)
    log("figure sweeps, local executor: %.1f s" % (time.monotonic() - t))
    differ = []
    for sw in sweeps:
        g1 = (work / "figures_slurm" / sw.stem / "gathered.csv").read_bytes()
        g2 = (work / "figures_local" / sw.stem / "gathered.csv").read_bytes()
        if g1 != g2:
            l1, l2 = g1.decode().splitlines(), g2.decode().splitlines()
            first = next((i for i in range(min(len(l1), len(l2))) if l1[i] != l2[i]),
                         min(len(l1), len(l2)))
            differ.append("%s: gathered.csv differs between the SLURM and the local executor "
                          "(%d and %d lines; first difference at line %d:\n  slurm: %s\n  "
                          "local: %s)" % (sw.stem, len(l1), len(l2), first + 1,
                                          l1[first] if first < len(l1) else "(end)",
                                          l2[first] if first < len(l2) else "(end)"))
        else:
            log("%s: gathered.csv, %d rows, identical from both executors"
                % (sw.stem, g1.count(b"\n") - 1))
    if differ:
        raise Failure("\n".join(differ))


if __name__ == "__main__":
    sys.exit(main())

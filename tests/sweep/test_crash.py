#!/usr/bin/python3
"""Kill-and-resume, signals, thread independence and run refusal of the cell runner (docs/sweeps.md).

Runs the real `icl_cell` on small cells in a temporary folder:

1. threads: the same cell with --threads 1, 2 and 3 gives byte-identical model.safetensors and
   metrics.csv (the batch is always cut into run.chunk_sequences chunks summed in chunk order).
2. crash: a run killed with SIGKILL at random moments (seeded; at least 5 kills, at least one of
   them inside a checkpoint write, made observable with the test hook ICL_TEST_WRITE_PAUSE_MS) and
   resumed after each ends byte-identical to the uninterrupted run; after every kill the checkpoint
   on disk, if any, is a complete safetensors file (atomic replace), and no kill loses more than
   one checkpoint interval of progress once a checkpoint exists.
3. signals: SIGTERM / SIGINT / SIGUSR1 make the runner checkpoint and exit 75 (status.json says
   interrupted, at the checkpoint's step); resuming gives the uninterrupted bytes; a second signal
   exits at once with 128 + signal.
4. refusal: changing a result-changing setting of a half-run cell makes the runner exit 2 naming
   the field; changing only the checkpoint interval (no effect on results) is accepted.
5. adoption (run.adopt_siblings): a cell that differs from a finished sibling only in its
   evaluation takes the sibling's model file (byte-identical, "adopted" in its log, no training
   progress line) and evaluates it; a sibling of another run (another seed) or another shape is
   not adopted, and without the setting nothing is adopted.

Usage: test_crash.py --exe PATH/icl_cell [--work DIR] [--seed S]
"""
import argparse
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

FAILURES = []
PASSED = [0]


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if cond:
        PASSED[0] += 1
    else:
        FAILURES.append(what)


def write_config(d, settings):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"sweep": "test_crash", "cell": os.path.basename(d), "settings": settings}, f)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def safetensors_complete(path):
    """True if path is a whole safetensors file: header length, JSON header, data size all agree."""
    b = read(path)
    if len(b) < 8:
        return False
    n = struct.unpack("<Q", b[:8])[0]
    if 8 + n > len(b):
        return False
    try:
        header = json.loads(b[8:8 + n])
    except ValueError:
        return False
    end = 0
    for k, v in header.items():
        if k != "__metadata__":
            end = max(end, v["data_offsets"][1])
    return 8 + n + end == len(b)


def checkpoint_step(path):
    b = read(path)
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    info = header["train.step"]
    lo, hi = info["data_offsets"]
    raw = b[8 + n + lo:8 + n + hi]
    return struct.unpack("<d", raw)[0] if info["dtype"] == "F64" else struct.unpack("<f", raw)[0]


def run(exe, d, threads=1, env=None, timeout=600):
    with open(os.path.join(d, "log.txt"), "ab") as log:
        return subprocess.run([exe, "--cell", d, "--threads", str(threads)], stdout=log, stderr=log,
                              env=env, timeout=timeout).returncode


BASE = {
    "model.d": 2, "model.layers": 1, "run.task.n": 10, "run.batch": 8, "run.eval_batch": 32,
    "eval.kind": "mspd", "eval.legend": "ols_ridge", "eval.contexts": 16,
}


def test_threads(exe, work):
    s = dict(BASE, **{"run.steps": 40, "run.checkpoint_every": 10})
    out = {}
    for t in (1, 2, 3):
        d = os.path.join(work, "threads_%d" % t)
        write_config(d, s)
        rc = run(exe, d, threads=t)
        check(rc == 0, "threads %d: exit 0 (got %d)" % (t, rc))
        out[t] = (read(os.path.join(d, "model.safetensors")), read(os.path.join(d, "metrics.csv")))
    check(out[1] == out[2] == out[3], "threads 1, 2, 3: identical model.safetensors and metrics.csv")


def test_crash(exe, work, rng):
    steps, every = 1500, 20
    s = dict(BASE, **{"run.steps": steps, "run.checkpoint_every": every, "run.log_every": 50})
    ref = os.path.join(work, "crash_ref")
    write_config(ref, s)
    t0 = time.monotonic()
    check(run(exe, ref) == 0, "crash: the uninterrupted reference run exits 0")
    t_ref = time.monotonic() - t0
    d = os.path.join(work, "crash")
    write_config(d, s)
    kills, in_write, attempts = 0, 0, 0
    env = dict(os.environ, ICL_TEST_WRITE_PAUSE_MS="400", ICL_TEST_WRITE_PAUSE_MATCH="checkpoint")
    while attempts < 40:
        attempts += 1
        want_write = in_write == 0 and kills >= 2  # one kill aimed inside a checkpoint write
        with open(os.path.join(d, "log.txt"), "ab") as log:
            p = subprocess.Popen([exe, "--cell", d], stdout=log, stderr=log,
                                 env=env if want_write else None)
        ck = os.path.join(d, "checkpoint.safetensors")
        before = checkpoint_step(ck) if os.path.exists(ck) else None
        killed_in_write = False
        if want_write:
            deadline = time.monotonic() + 60
            tmp = None
            while p.poll() is None and time.monotonic() < deadline and tmp is None:
                for name in os.listdir(d):
                    if name.startswith("checkpoint.safetensors.tmp."):
                        tmp = name
                time.sleep(0.005)
            if tmp is not None and p.poll() is None:
                time.sleep(0.05)  # inside the paused write: half the bytes are in the temporary file
                killed_in_write = True
        else:
            # a moment inside what is left of the run (from the last checkpoint), so that every
            # attempt is still running when the kill comes
            left = 1.0 - (before or 0) / steps
            time.sleep(rng.uniform(0.05, max(0.1, 0.5 * left * t_ref)))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
            in_write += 1 if killed_in_write else 0
            intact = (not os.path.exists(ck)) or safetensors_complete(ck)
            check(intact, "crash: after kill %d%s the checkpoint is %s" %
                  (kills, " (inside a checkpoint write)" if killed_in_write else "",
                   "a complete file" if os.path.exists(ck) else "absent (none written yet)"))
            if killed_in_write:
                check(os.path.exists(ck) and before is not None and checkpoint_step(ck) >= before,
                      "crash: the kill inside a write left the previous checkpoint (step %s)" % before)
            if kills >= 6 and in_write >= 1:
                break
        else:
            break  # it finished before the kill: nothing more to interrupt
    check(kills >= 5, "crash: at least 5 SIGKILLs landed (%d)" % kills)
    check(in_write >= 1, "crash: at least one SIGKILL landed inside a checkpoint write (%d)" % in_write)
    log = read(os.path.join(d, "log.txt")).decode(errors="replace")
    resumed = [l for l in log.splitlines() if l.startswith("resumed ")]
    check(any(not l.endswith(" at step 0") for l in resumed),
          "crash: some attempt resumed from a checkpoint past step 0 (%d resumes)" % len(resumed))
    rc = run(exe, d)
    check(rc == 0, "crash: the final resume exits 0 (got %d)" % rc)
    for f in ("model.safetensors", "metrics.csv"):
        check(read(os.path.join(d, f)) == read(os.path.join(ref, f)),
              "crash: %s is byte-identical to the uninterrupted run's" % f)
    debris = [n for n in os.listdir(d) if ".tmp." in n]
    check(not debris, "crash: no temporary file of a killed write is left once the cell is done (%s)" % debris)


def test_signals(exe, work):
    s = dict(BASE, **{"run.steps": 1500, "run.checkpoint_every": 500, "run.log_every": 10})
    ref = os.path.join(work, "sig_ref")
    write_config(ref, s)
    check(run(exe, ref) == 0, "signals: reference exits 0")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        d = os.path.join(work, "sig_%d" % sig)
        write_config(d, s)
        with open(os.path.join(d, "log.txt"), "ab") as log:
            p = subprocess.Popen([exe, "--cell", d], stdout=log, stderr=log)
        st = os.path.join(d, "status.json")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:  # wait for some steps
            try:
                if json.loads(read(st)).get("step", 0) >= 20:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.01)
        p.send_signal(sig)
        rc = p.wait(timeout=60)
        check(rc == 75, "signals: %s -> exit 75 (got %d)" % (signal.Signals(sig).name, rc))
        status = json.loads(read(st))
        check(status["state"] == "interrupted", "signals: status.json says interrupted")
        ck = os.path.join(d, "checkpoint.safetensors")
        step = checkpoint_step(ck) if os.path.exists(ck) else -1
        check(0 < step < 1500, "signals: a checkpoint was written at the stop (step %g, interval 500)" % step)
        check(status.get("step") == step and status.get("steps") == 1500,
              "signals: status.json says the checkpoint's step of 1500 (step %s of %s; checkpoint %g)"
              % (status.get("step"), status.get("steps"), step))
        check(run(exe, d) == 0, "signals: resume exits 0")
        check(read(os.path.join(d, "model.safetensors")) == read(os.path.join(ref, "model.safetensors")),
              "signals: resumed model is byte-identical")
    # a second signal: exit at once with 128 + signal, without a checkpoint. The checkpoint write is
    # made slow (3 s) so that the second signal lands while the first one is being handled. A repeat
    # of the same signal within 1 s is a duplicate delivery (SLURM signals the runner and the batch
    # script forwards the same signal): it is not a second request.
    env = dict(os.environ, ICL_TEST_WRITE_PAUSE_MS="3000", ICL_TEST_WRITE_PAUSE_MATCH="checkpoint")
    for name, gap, second, want in (("duplicate", 0.01, signal.SIGTERM, 75),
                                    ("second", 1.5, signal.SIGTERM, 128 + signal.SIGTERM),
                                    ("other", 0.01, signal.SIGINT, 128 + signal.SIGINT)):
        d = os.path.join(work, "sig_twice_" + name)
        write_config(d, s)
        with open(os.path.join(d, "log.txt"), "ab") as log:
            p = subprocess.Popen([exe, "--cell", d], stdout=log, stderr=log, env=env)
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        time.sleep(gap)
        p.send_signal(second)
        rc = p.wait(timeout=60)
        check(rc == want, "signals: SIGTERM then %s %.2f s later -> exit %d (got %d)" %
              (signal.Signals(second).name, gap, want, rc))


def test_refusal(exe, work):
    s = dict(BASE, **{"run.steps": 1500, "run.checkpoint_every": 50, "run.log_every": 10})
    d = os.path.join(work, "refuse")
    write_config(d, s)
    with open(os.path.join(d, "log.txt"), "ab") as log:
        p = subprocess.Popen([exe, "--cell", d], stdout=log, stderr=subprocess.PIPE)
    ck = os.path.join(d, "checkpoint.safetensors")
    deadline = time.monotonic() + 60
    while not os.path.exists(ck) and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.01)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    for key, value, field in (("run.steps", 3000, "run.steps = 1500 in the checkpoint, 3000 in this run"),
                              ("run.optimizer.lr", 0.0003, "run.optimizer.lr = 0.001 in the checkpoint"),
                              ("run.task.noise_std", 0.5, "run.task.noise_std = 0 in the checkpoint")):
        write_config(d, dict(s, **{key: value}))
        r = subprocess.run([exe, "--cell", d], capture_output=True, text=True, timeout=60)
        check(r.returncode == 2 and field in r.stderr,
              "refusal: changed %s -> exit 2 naming it (got %d: %s)" % (key, r.returncode, r.stderr.strip()[:200]))
    write_config(d, dict(s, **{"run.checkpoint_every": 100}))
    r = subprocess.run([exe, "--cell", d], capture_output=True, text=True, timeout=600)
    check(r.returncode == 0, "refusal: a changed checkpoint interval (no effect on results) resumes (got %d)"
          % r.returncode)
    # a bad setting is a configuration error
    bad = os.path.join(work, "bad")
    write_config(bad, dict(BASE, **{"run.stpes": 10}))
    r = subprocess.run([exe, "--check", bad], capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "unknown setting 'run.stpes'" in r.stderr, "refusal: an unknown key -> exit 2")
    write_config(bad, dict(BASE, **{"model.hidden": 48}))
    r = subprocess.run([exe, "--check", bad], capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "not compiled for d = 2" in r.stderr, "refusal: an uncompiled shape -> exit 2")


def test_adoption(exe, work):
    root = os.path.join(work, "adopt", "cells")
    s = dict(BASE, **{"run.steps": 30, "run.adopt_siblings": True})
    first = os.path.join(root, "a_first")
    write_config(first, s)
    check(run(exe, first) == 0, "adoption: the first cell trains")
    model = read(os.path.join(first, "model.safetensors"))
    # another evaluation, the same training: adopted
    same = os.path.join(root, "b_same_run")
    write_config(same, dict(s, **{"eval.contexts": 24}))
    check(run(exe, same) == 0, "adoption: the sibling exits 0")
    log = read(os.path.join(same, "log.txt")).decode()
    check("adopted " in log and "a_first" in log and "step " not in log,
          "adoption: the sibling adopted the first cell's model without training (log: %r)" % log[-300:])
    check(read(os.path.join(same, "model.safetensors")) == model, "adoption: byte-identical model file")
    check(os.path.exists(os.path.join(same, "metrics.csv")), "adoption: the sibling is evaluated")
    # the reference: the same cell trained without adoption gives the same bytes
    ref = os.path.join(work, "adopt_ref")
    write_config(ref, dict(s, **{"eval.contexts": 24, "run.adopt_siblings": False}))
    check(run(exe, ref) == 0 and read(os.path.join(ref, "model.safetensors")) == model,
          "adoption: training the sibling from scratch gives the adopted bytes")
    check(read(os.path.join(ref, "metrics.csv")) == read(os.path.join(same, "metrics.csv")),
          "adoption: and the same metrics")
    # a cell interrupted while its sibling trained (a checkpoint of its own) adopts the finished
    # model instead of resuming: the checkpoint here is garbage, which resuming would refuse
    late = os.path.join(root, "f_interrupted")
    write_config(late, dict(s, **{"eval.contexts": 28}))
    with open(os.path.join(late, "checkpoint.safetensors"), "wb") as f:
        f.write(b"not a checkpoint")
    check(run(exe, late) == 0, "adoption: a cell with a checkpoint of its own exits 0")
    log = read(os.path.join(late, "log.txt")).decode()
    check("adopted " in log and "removed " in log and "resumed" not in log,
          "adoption: it adopted the model and removed its checkpoint (log: %r)" % log[-300:])
    check(read(os.path.join(late, "model.safetensors")) == model and
          not os.path.exists(os.path.join(late, "checkpoint.safetensors")),
          "adoption: byte-identical model, checkpoint gone")
    # another run (seed) or another shape (layers) is not adopted; nor without the setting
    for name, change in (("c_other_seed", {"run.seed": 5}), ("d_other_layers", {"model.layers": 2}),
                         ("e_not_asked", {"run.adopt_siblings": False, "eval.contexts": 20})):
        d = os.path.join(root, name)
        write_config(d, dict(s, **change))
        check(run(exe, d) == 0, "adoption: %s exits 0" % name)
        log = read(os.path.join(d, "log.txt")).decode()
        check("adopted " not in log, "adoption: %s trained itself (nothing adopted)" % name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--work", default=None)
    ap.add_argument("--seed", type=int, default=20261201)
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="icl_test_crash_")
    if os.path.exists(work):
        shutil.rmtree(work)
    os.makedirs(work)
    rng = random.Random(a.seed)
    test_threads(a.exe, work)
    test_crash(a.exe, work, rng)
    test_signals(a.exe, work)
    test_refusal(a.exe, work)
    test_adoption(a.exe, work)
    print("%d passed, %d failed" % (PASSED[0], len(FAILURES)))
    if FAILURES:
        print("failed: " + "; ".join(FAILURES))
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

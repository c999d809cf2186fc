#!/usr/bin/python3
"""A stand-in for icl_cell obeying the cell-runner contract of docs/sweeps.md §3, for the driver's
tests (tests/sweep/test_driver.py). It trains nothing: a "step" is a status.json update.

    fake_cell.py --cell DIR [--threads T]   run, resume or skip the cell; exit 0, 75, 2 or 1
    fake_cell.py --check DIR                exit 0, or 2 if a setting is refused

Settings it reads from DIR/config.json (every other key is accepted and ignored):
    run.steps             steps (default 3)
    bad.*                 any key starting with "bad." is refused (exit 2) naming it
    fake.exit             an integer: exit at once with this status, the cell not done (2: a config
                          error; 1: a crash; 0: a runner that breaks the contract); "no": run
    fake.fail_times       fail (exit 1, stderr "fake failure <k>") the first N runs of the cell
    fake.interrupt_times  the first N runs do one step, write a checkpoint and exit 75
    fake.sleep            seconds per step (default 0)
    fake.loss             the eval_loss value to report (default: a number derived from the settings)
A signal (TERM, INT, USR1) makes it checkpoint at the next step and exit 75; a second one exits at
once with 128 + the signal's number. Its output depends on the settings only (not on --threads).
"""
import hashlib
import json
import os
import signal
import sys
import time

signals = []


def on_signal(signum, frame):
    signals.append(signum)
    if len(signals) > 1:
        os._exit(128 + signum)


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def counter(d, name):
    """How many times this has been asked before; counts this ask."""
    path = os.path.join(d, name)
    n = int(open(path).read()) if os.path.exists(path) else 0
    write(path, str(n + 1))
    return n


def main(argv):
    if len(argv) >= 2 and argv[0] in ("--cell", "--check"):
        mode, d = argv[0], argv[1]
        rest = argv[2:]
    else:
        print("usage: fake_cell.py --cell DIR [--threads T] | --check DIR", file=sys.stderr)
        return 2
    threads = 1
    if rest[:1] == ["--threads"] and len(rest) == 2:
        threads = int(rest[1])
    elif rest:
        print(f"fake_cell: unexpected arguments {rest}", file=sys.stderr)
        return 2
    try:
        cfg = json.load(open(os.path.join(d, "config.json")))
    except (OSError, ValueError) as e:
        print(f"fake_cell: {d}/config.json: {e}", file=sys.stderr)
        return 2
    s = cfg["settings"]
    for k in s:
        if k.startswith("bad."):
            print(f"fake_cell: unknown setting '{k}'", file=sys.stderr)
            return 2
    if mode == "--check":
        return 0

    status_path = os.path.join(d, "status.json")
    metrics_path = os.path.join(d, "metrics.csv")
    steps = int(s.get("run.steps", 3))

    def status(state, step, error=""):
        write(status_path, json.dumps({"state": state, "step": step, "steps": steps,
                                       "loss": 1.0 / (1 + step), "steps_per_s": 10.0,
                                       "error": error, "attempt": 1}))

    if os.path.exists(status_path) and os.path.exists(metrics_path):
        if json.load(open(status_path)).get("state") == "done":
            print("fake_cell: already done")
            return 0
    if isinstance(s.get("fake.exit"), int):
        code = s["fake.exit"]
        print(f"fake_cell: told to exit {code}", file=sys.stderr)
        status("failed", 0, f"told to exit {code}")
        return code
    n = counter(d, "fake_runs") + 1
    if n <= int(s.get("fake.fail_times", 0)):
        print("fake_cell: some noise on stderr", file=sys.stderr)
        print(f"fake failure {n}", file=sys.stderr)
        status("failed", 0, f"fake failure {n}")
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(sig, on_signal)
    ckpt = os.path.join(d, "checkpoint.json")
    step = json.load(open(ckpt))["step"] if os.path.exists(ckpt) else 0
    print(f"fake_cell: running {cfg['cell']} with {threads} threads from step {step}", flush=True)
    interrupt = counter(d, "fake_interrupt_asks") < int(s.get("fake.interrupt_times", 0))
    while step < steps:
        time.sleep(float(s.get("fake.sleep", 0)))
        step += 1
        status("running", step)
        if signals or interrupt:
            write(ckpt, json.dumps({"step": step}))
            status("interrupted", step)
            print(f"fake_cell: checkpoint at step {step}", file=sys.stderr)
            return 75
    h = int(hashlib.sha256(json.dumps(s, sort_keys=True).encode()).hexdigest()[:8], 16)
    loss = float(s["fake.loss"]) if "fake.loss" in s else 0.5 + h / 2**32
    rows = ["metric,a,b,layer,prefix,value,ci95",
            f"eval_loss,,,,,{loss!r},",
            f"mspd,Transformer,OLS,,{steps},{loss / 3!r},{h % 1000 / 1e4!r}",
            'note,"a,b",x,,,0.10,']
    write(metrics_path, "\n".join(rows) + "\n")
    status("done", steps)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

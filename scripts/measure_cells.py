#!/usr/bin/python3
"""Measures the training rate (steps/s) of the figure sweeps' cell shapes with the real icl_cell.

usage: measure_cells.py --runner build/examples/icl_cell [--threads 1] [--steps 200]
                        [--max-seconds 240] [--shapes d8L4,d4L8,...] [--work DIR]

For every shape (d, L at H = 64, M = 4, batch 64, n = 40: the shapes of sweeps/fig1.toml ...
fig4.toml at their full scale) it writes a cell folder with the full run's settings (run.steps
6000, so that warmup and schedule are the real ones; run.log_every 25, which changes no result),
starts `icl_cell --cell DIR --threads T`, waits until the cell's status.json reports at least
--steps steps (or --max-seconds pass), stops it with SIGTERM (it checkpoints and exits 75) and
prints the steps/s of its last progress line (the rate over the last 25 steps) and the mean over
the whole measured run excluding its first progress line. docs/sweeps.md §7 quotes the results.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SHAPES = {  # name: (d, layers)
    "d8L1": (8, 1), "d8L2": (8, 2), "d8L4": (8, 4), "d8L8": (8, 8), "d8L16": (8, 16),
    "d4L8": (4, 8),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runner", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--max-seconds", type=float, default=240)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--work", help="folder for the cell folders (default: a temporary one, removed)")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="icl-measure-")
    print("shape threads steps seconds steps_per_s(last) steps_per_s(mean after the first line)",
          flush=True)
    try:
        for name in a.shapes.split(","):
            d, L = SHAPES[name]
            cell = os.path.join(work, "%s_T%d" % (name, a.threads))
            shutil.rmtree(cell, ignore_errors=True)
            os.makedirs(cell)
            settings = {"model.d": d, "model.layers": L, "model.hidden": 64, "model.heads": 4,
                        "run.steps": 6000, "run.batch": 64, "run.task.n": 40,
                        "run.log_every": 25, "run.checkpoint_every": 100000, "eval.kind": "none"}
            with open(os.path.join(cell, "config.json"), "w") as f:
                json.dump({"sweep": "measure", "cell": name, "settings": settings}, f)
            log = open(os.path.join(cell, "log.txt"), "w")
            p = subprocess.Popen([a.runner, "--cell", cell, "--threads", str(a.threads)],
                                 stdout=log, stderr=subprocess.STDOUT)
            t0 = time.monotonic()
            first = None  # (time, step) of the first progress line
            st = {}
            try:
                while p.poll() is None and time.monotonic() - t0 < a.max_seconds:
                    time.sleep(0.5)
                    try:
                        with open(os.path.join(cell, "status.json")) as f:
                            st = json.load(f)
                    except (OSError, ValueError):
                        continue
                    if first is None and st.get("step", 0) > 0:
                        first = (time.monotonic(), st["step"])
                    if st.get("step", 0) >= a.steps:
                        break
            finally:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                log.close()
            t1 = time.monotonic()
            step = st.get("step", 0)
            mean = (step - first[1]) / (t1 - first[0]) if first and step > first[1] else float("nan")
            print("%s %d %d %.1f %.3g %.3g" % (name, a.threads, step, t1 - t0,
                                              st.get("steps_per_s") or float("nan"), mean),
                  flush=True)
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

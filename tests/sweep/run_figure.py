#!/usr/bin/python3
"""CTest example.fig1 ... example.fig4: a figure sweep's quick version, run and gathered.

    run_figure.py --sweep sweeps/fig3.toml --root DIR --runner BUILD/examples/icl_cell
                  [--driver tools/icl_sweep.py] [-P 2] [-T 1] [--timeout 600]

Removes DIR (a sweep root from an earlier run: every cell is run afresh by the runner under
test), runs `icl_sweep.py run SWEEP --quick --root DIR --runner RUNNER -P P -T T`, then `gather
--quick`, and checks that DIR/gathered.csv has a row from every cell of the quick sweep (`plan
--quick --no-check` lists them). example.plot_figures then draws the four gathered CSVs. The
driver runs in its own process group: on a timeout or a signal it is sent TERM (it stops its
runners, which checkpoint) and then the group is killed, so that no runner outlives the test.
"""
import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent.parent
T0 = time.monotonic()


class Failure(Exception):
    pass


class Stopped(BaseException):
    pass


def _on_signal(signum, frame):
    raise Stopped("signal %d" % signum)


def log(msg):
    print("[%6.1f s] %s" % (time.monotonic() - T0, msg), flush=True)


def run(cmd, timeout):
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
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
        raise Failure("%s: exit status %d\n%s" % (" ".join(str(c) for c in cmd), p.returncode, out))
    return out


def dropped(cell_dir):
    try:
        with open(cell_dir / "status.json", encoding="utf-8") as f:
            return json.load(f).get("state") == "dropped"
    except (OSError, ValueError):
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sweep", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--runner", required=True)
    ap.add_argument("--driver", default=str(SOURCE / "tools" / "icl_sweep.py"))
    ap.add_argument("-P", type=int, default=2)
    ap.add_argument("-T", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)
    py = sys.executable
    root = Path(a.root).resolve()
    try:
        if root.exists():
            if not (root / "cells").is_dir() and any(root.iterdir()):
                raise Failure("%s exists and is not a sweep root (no cells/); not removing it"
                              % root)
            shutil.rmtree(root)
        plan = run([py, a.driver, "plan", a.sweep, "--quick", "--root", root, "--no-check"], 60)
        cells = [l.split()[0] for l in plan.splitlines()[1:] if l and not l[0].isspace()
                 and len(l.split()[0]) == 12]
        if not cells:
            raise Failure("plan listed no cells:\n" + plan)
        t = time.monotonic()
        run([py, a.driver, "run", a.sweep, "--quick", "--root", root, "--runner", a.runner,
             "-P", a.P, "-T", a.T, "--progress-every", "30"], a.timeout)
        planned = len(cells)
        # a staged selection ([select] seeds) drops the other seeds of the configurations it did
        # not choose: those cells never run
        cells = [c for c in cells if not dropped(root / "cells" / c)]
        log("%d cells run in %.1f s (-P %d -T %d; %d dropped by a staged selection)"
            % (len(cells), time.monotonic() - t, a.P, a.T, planned - len(cells)))
        run([py, a.driver, "gather", a.sweep, "--quick", "--root", root], 60)
        with open(root / "gathered.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        seen = {r["cell"] for r in rows}
        missing = [c for c in cells if c not in seen]
        if missing:
            raise Failure("gathered.csv has no rows of the cells %s" % ", ".join(missing))
        log("%s: %d rows from %d cells" % (root / "gathered.csv", len(rows), len(seen)))
        return 0
    except Failure as e:
        print("FAIL: %s" % e, file=sys.stderr)
        return 1
    except Stopped as e:
        print("FAIL: stopped by %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

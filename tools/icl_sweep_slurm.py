"""The SLURM executor of tools/icl_sweep.py (docs/sweeps.md, section 4).

The driver calls submit() with the pending cells of a sweep. It writes

    <root>/slurm/array-<n>.cells   one cell folder per line (absolute); task i runs line i + 1
    <root>/slurm/array-<n>.sh      the batch script, every sbatch option as an #SBATCH line
    <root>/slurm/array-<n>.job     the job id, once sbatch accepted the array

(n = 0, 1, 2, ...: one per submission) and submits the script as one job array. Each array task
runs the cell runner on its cell as a child of the batch shell, forwards USR1 and TERM to it,
appends one JSON line per attempt to <cell>/slurm_attempts.jsonl and, when the runner exits 75
(stopped after a checkpoint), requeues its own array task; SLURM runs it again later and the
runner resumes from the checkpoint.

Everything but submit() is a pure function of its arguments. Standard library only; importing
this module has no side effects.
"""

import json
import os
import re
import shlex
import subprocess
import sys

__all__ = ["submit", "sbatch_options", "batch_script", "cells_text", "validate_resources"]

EX_INTERRUPTED = 75   # the cell runner's "stopped after writing a checkpoint"


def _no_newline(what, value):
    s = str(value)
    if "\n" in s or "\r" in s or "\0" in s:
        raise ValueError("%s must be one line: %r" % (what, s))
    return s


def validate_resources(resources):
    """The [resources] table as sbatch values; ValueError naming the bad key."""
    r = dict(resources or {})
    unknown = sorted(set(r) - {"cpus", "mem", "time", "signal_before", "partition"})
    if unknown:
        raise ValueError("[resources]: unknown key(s) %s (known: cpus, mem, time, "
                         "signal_before, partition)" % ", ".join(unknown))
    out = {}
    cpus = r.get("cpus", 1)
    if isinstance(cpus, bool) or not isinstance(cpus, int) or cpus < 1:
        raise ValueError("[resources] cpus must be a positive integer, not %r" % (cpus,))
    out["cpus"] = cpus
    mem = r.get("mem", "1G")
    if isinstance(mem, bool) or not re.fullmatch(r"[0-9]+[KMGT]?", str(mem)):
        raise ValueError("[resources] mem must be like \"2G\", \"512M\" or a number of "
                         "megabytes, not %r" % (mem,))
    out["mem"] = str(mem)
    time = r.get("time", "01:00:00")
    if not isinstance(time, (str, int)) or isinstance(time, bool) or not re.fullmatch(
            r"[0-9]+(-[0-9]+)?(:[0-9]+){0,2}", str(time)):
        raise ValueError("[resources] time must be a SLURM time limit such as \"02:00:00\" "
                         "or \"1-00:00:00\", not %r" % (time,))
    out["time"] = str(time)
    sb = r.get("signal_before", 300)
    if isinstance(sb, bool) or not isinstance(sb, int) or not 0 <= sb <= 65535:
        raise ValueError("[resources] signal_before must be an integer number of seconds "
                         "(0 to 65535), not %r" % (sb,))
    out["signal_before"] = sb
    if r.get("partition") is not None:
        p = r["partition"]
        if not isinstance(p, str) or not re.fullmatch(r"[A-Za-z0-9_.,-]+", p):
            raise ValueError("[resources] partition must be a partition name, not %r" % (p,))
        out["partition"] = p
    return out


def sbatch_options(sweep_name, root, n, num_cells, resources, max_parallel=None):
    """The sbatch options of array n over num_cells cells, in #SBATCH order."""
    if not isinstance(num_cells, int) or num_cells < 1:
        raise ValueError("a job array needs at least one cell, not %r" % (num_cells,))
    if max_parallel is not None and (isinstance(max_parallel, bool) or
                                     not isinstance(max_parallel, int) or max_parallel < 1):
        raise ValueError("max_parallel must be a positive integer or None, not %r"
                         % (max_parallel,))
    name = _no_newline("the sweep's name", sweep_name)
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
        raise ValueError("the sweep's name must be letters, digits and _.+- for a SLURM job "
                         "name, not %r" % (name,))
    r = validate_resources(resources)
    slurm_dir = os.path.join(os.path.abspath(_no_newline("the root folder", root)), "slurm")
    if re.search(r"\s", slurm_dir):
        raise ValueError("the root folder must not contain white space (an #SBATCH --output "
                         "line cannot hold it): %r" % slurm_dir)
    array = "0-%d" % (num_cells - 1) + ("%%%d" % max_parallel if max_parallel else "")
    opts = [
        "--job-name=icl-%s" % name,
        "--array=%s" % array,
        "--cpus-per-task=%d" % r["cpus"],
        "--mem=%s" % r["mem"],
        "--time=%s" % r["time"],
        "--requeue",
        "--open-mode=append",
        "--signal=B:USR1@%d" % r["signal_before"],
        "--output=%s" % os.path.join(slurm_dir, "array-%d_%%A_%%a.out" % n),
    ]
    if "partition" in r:
        opts.append("--partition=%s" % r["partition"])
    return opts


def cells_text(cell_dirs):
    """The .cells file: one absolute cell folder per line."""
    lines = []
    for d in cell_dirs:
        s = _no_newline("a cell folder", os.path.abspath(str(d)))
        lines.append(s)
    return "".join(s + "\n" for s in lines)


# The batch script's body. Placeholders: @CELLS@, @RUNNER@ (shell-quoted), @N@.
_BODY = r"""set -u
cells=@CELLS@
runner=@RUNNER@
task=${SLURM_ARRAY_TASK_ID:?this script runs as a SLURM array task}
job=${SLURM_ARRAY_JOB_ID}_${task}
restart=${SLURM_RESTART_COUNT:-0}
cell=$(sed -n "$((task + 1))p" "$cells")
if [ -z "$cell" ] || [ ! -d "$cell" ]; then
  echo "icl array @N@: task $task: no cell folder on line $((task + 1)) of $cells" >&2
  exit 2
fi
log=$cell/log.txt
note() { echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) slurm $job (restart $restart): $*" | tee -a "$log"; }

# The runner is a child of this shell, not a job step (no srun): a signal for the batch shell
# (--signal=B:USR1@T, scancel --signal=USR1 --batch) reaches only this shell, which forwards it.
# At most one signal is forwarded per attempt: a second one makes the runner exit at once,
# without the checkpoint the first one asked for.
child=
forwarded=
forward() {
  note "got SIG$1${forwarded:+ (already forwarded SIG$forwarded: not forwarded)}"
  if [ -z "$forwarded" ]; then
    forwarded=$1
    if [ -n "$child" ]; then kill -s "$1" "$child" 2>/dev/null; fi
  fi
}
trap 'forward USR1' USR1
trap 'forward TERM' TERM

start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
threads=${SLURM_CPUS_PER_TASK:-1}
# which build trained the cell (a requeued or resubmitted cell may resume with a rebuilt runner)
runner_sha=$(sha256sum "$runner" 2>/dev/null | cut -d' ' -f1)
note "start on $(hostname -s): $runner --cell $cell --threads $threads (runner sha256 ${runner_sha:0:12})"
"$runner" --cell "$cell" --threads "$threads" >>"$log" 2>&1 &
child=$!
if [ -n "$forwarded" ]; then kill -s "$forwarded" "$child" 2>/dev/null; fi
# wait returns early (status > 128) when a trapped signal arrives: wait again while the child
# lives; the last wait returns its exit status (bash keeps it).
while kill -0 "$child" 2>/dev/null; do wait "$child"; done
wait "$child"
status=$?
end=$(date -u +%Y-%m-%dT%H:%M:%SZ)
trap '' USR1 TERM   # the runner is gone; a requeue below makes SLURM signal this shell

# The attempt is recorded before the requeue: scontrol requeue ends this job (TERM, then KILL
# after KillWait), so nothing after it is sure to run.
action=exit
if [ "$status" -eq 75 ]; then action=requeue; fi
printf '{"job":"%s","job_id":%s,"array_job_id":%s,"task":%s,"restart":%s,"exit":%s,"signal":"%s","action":"%s","start":"%s","end":"%s","host":"%s","threads":%s,"runner_sha256":"%s","array":@N@}\n' \
  "$job" "${SLURM_JOB_ID:-0}" "${SLURM_ARRAY_JOB_ID}" "$task" "$restart" "$status" \
  "$forwarded" "$action" "$start" "$end" "$(hostname -s)" "$threads" "$runner_sha" \
  >>"$cell/slurm_attempts.jsonl"
if [ "$status" -eq 75 ]; then
  note "runner stopped after a checkpoint (75): scontrol requeue $job"
  if scontrol requeue "$job" >>"$log" 2>&1; then exit 0; fi
  note "scontrol requeue $job failed: the cell stays interrupted (resume: submit again)"
  exit 75
fi
note "runner exit status $status"
exit "$status"
"""


def batch_script(sweep_name, root, n, num_cells, runner, resources, max_parallel=None):
    """The text of <root>/slurm/array-<n>.sh."""
    opts = sbatch_options(sweep_name, root, n, num_cells, resources, max_parallel)
    slurm_dir = os.path.join(os.path.abspath(str(root)), "slurm")
    cells = os.path.join(slurm_dir, "array-%d.cells" % n)
    runner = os.path.abspath(_no_newline("the cell runner's path", runner))
    head = ["#!/bin/bash",
            "# icl sweep %s: array %d over %d cell(s) in %s" % (sweep_name, n, num_cells,
                                                                cells),
            "# written by tools/icl_sweep_slurm.py (docs/sweeps.md section 4); submit with",
            "# sbatch --parsable %s" % shlex.quote(os.path.join(slurm_dir, "array-%d.sh" % n))]
    head += ["#SBATCH %s" % o for o in opts]
    body = (_BODY.replace("@CELLS@", shlex.quote(cells))
                 .replace("@RUNNER@", shlex.quote(runner))
                 .replace("@N@", str(n)))
    return "\n".join(head) + "\n\n" + body


# -- files -------------------------------------------------------------------------------------

def _write_tmp(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def _fsync_dir(d):
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, text, mode=0o644):
    """Write text to path: temporary file in the same folder, fsync, rename over path."""
    tmp = _write_tmp(path, text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path) or ".")


def _claim(slurm_dir, cells):
    """Write array-<n>.cells for the first free n (exclusive: two submissions get two n's)."""
    existing = [int(m.group(1)) for m in
                (re.fullmatch(r"array-([0-9]+)\.(cells|sh)", f) for f in os.listdir(slurm_dir))
                if m]
    n = max(existing) + 1 if existing else 0
    while True:
        path = os.path.join(slurm_dir, "array-%d.cells" % n)
        tmp = _write_tmp(path, cells)
        try:
            os.link(tmp, path)        # fails if another submission took n
            return n
        except FileExistsError:
            n += 1
        finally:
            os.unlink(tmp)


def next_index(slurm_dir):
    """The n the next submission will take (for --dry-run)."""
    if not os.path.isdir(slurm_dir):
        return 0
    ks = [int(m.group(1)) for m in
          (re.fullmatch(r"array-([0-9]+)\.(cells|sh)", f) for f in os.listdir(slurm_dir)) if m]
    return max(ks) + 1 if ks else 0


def parse_job_id(out):
    """sbatch --parsable prints 'jobid' or 'jobid;cluster'."""
    m = re.fullmatch(r"\s*([0-9]+)(;\S*)?\s*", out)
    if not m:
        raise RuntimeError("sbatch printed no job id: %r" % out)
    return int(m.group(1))


def _cell_pair(c):
    """(cell id, cell folder) from a driver Cell (.id, .dir) or an (id, dir) pair."""
    if hasattr(c, "dir"):
        return str(getattr(c, "id", "")), str(c.dir)
    cid, d = c
    return str(cid), str(d)


def submit(sweep, root, cells, runner, resources, dry_run=False, max_parallel=None):
    """Submit the pending cells as one job array; return its job id (0 for a dry run).

    sweep: the parsed sweep (a dict with "name" or an object with .name); root: the sweep's
    folder; cells: [(cell_id, cell_dir)] or the driver's Cell objects (.id, .dir), each with its
    config.json written; runner: the cell runner's path; resources: the [resources] table;
    dry_run: print the batch script to stdout, write and submit nothing; max_parallel: K of
    --array=...%K (None: no limit). With no cells, nothing is submitted and 0 is returned.
    """
    name = sweep["name"] if isinstance(sweep, dict) else sweep.name
    root = os.path.abspath(str(root))
    cells = [_cell_pair(c) for c in cells]
    slurm_dir = os.path.join(root, "slurm")
    if not cells:
        print("slurm: every cell is done; nothing submitted", file=sys.stderr)
        return 0
    if not dry_run:
        for cid, d in cells:
            if not os.path.isfile(os.path.join(d, "config.json")):
                raise ValueError("cell %s: no config.json in %s" % (cid, d))
    text = cells_text(d for _, d in cells)
    if dry_run:
        n = next_index(slurm_dir)
        sys.stdout.write(batch_script(name, root, n, len(cells), str(runner), resources,
                                      max_parallel))
        sys.stdout.flush()
        print("(dry run: would write %s/array-%d.sh and .cells over %d cell(s) and submit it; "
              "nothing written or submitted)" % (slurm_dir, n, len(cells)), file=sys.stderr)
        return 0
    batch_script(name, root, 0, len(cells), str(runner), resources, max_parallel)  # validate
    os.makedirs(slurm_dir, exist_ok=True)
    n = _claim(slurm_dir, text)
    script = os.path.join(slurm_dir, "array-%d.sh" % n)
    write_atomic(script, batch_script(name, root, n, len(cells), str(runner), resources,
                                      max_parallel), 0o755)
    try:
        r = subprocess.run(["sbatch", "--parsable", script], cwd=slurm_dir,
                           capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise RuntimeError("sbatch not found: the slurm executor needs SLURM's client "
                           "programs on PATH") from None
    if r.returncode != 0:
        raise RuntimeError("sbatch %s failed (%d): %s" % (script, r.returncode,
                                                          (r.stderr or r.stdout).strip()))
    job = parse_job_id(r.stdout)
    write_atomic(os.path.join(slurm_dir, "array-%d.job" % n), "%d\n" % job)
    print("slurm: submitted job array %d (%s, %d cell(s))" % (job, script, len(cells)))
    return job

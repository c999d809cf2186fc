#!/usr/bin/python3
"""A one-node SLURM cluster in a folder, for tests (docs/sweeps.md, "What is tested").

    slurm_cluster.py start DIR     # munged + slurmctld + slurmd; returns when the node is idle
    slurm_cluster.py stop DIR      # cancel its jobs, stop what start started; safe to repeat
    slurm_cluster.py env DIR       # print 'export SLURM_CONF=...' for a shell
    slurm_cluster.py watch DIR PID SECONDS   # stop DIR's cluster when PID ends or time is up

Everything lives in DIR: the munge key, socket, pid and log files, slurm.conf, the state and
spool folders and the daemons' logs. No system service or file outside DIR is used; the two
SLURM ports are picked free on this machine when the cluster starts.

Stopping kills only processes of this cluster: the three daemons by the PIDs in their pid files
(each checked, before it is signalled, to be the program it should be and to name DIR on its
command line), and any job process left behind (slurmstepd and the job's own processes), found
by SLURM_CONF=DIR/slurm.conf in its environment, which SLURM gives every process it starts
(with SLURM_JOB_ID, or named slurmstepd; never this process or its ancestors).
TERM, a bounded wait, then KILL.

Needs root (SlurmUser=root), slurm-wlm and munge (apt-get install -y slurm-wlm munge). When a
program is missing, start fails with a message naming it (exit status 3).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

PROGRAMS = ["munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scontrol", "scancel"]


class ClusterError(RuntimeError):
    pass


def missing_programs():
    return [p for p in PROGRAMS if shutil.which(p, path=os.environ.get("PATH", "") +
                                                ":/usr/sbin:/usr/bin:/sbin") is None]


def _which(p):
    return shutil.which(p, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin:/sbin")


def conf_path(d):
    return os.path.join(os.path.abspath(d), "slurm.conf")


def env(d):
    """The environment for SLURM clients talking to the cluster in d."""
    e = dict(os.environ)
    e["SLURM_CONF"] = conf_path(d)
    for k in list(e):   # a test run inside a SLURM job must not leak that job's settings
        if k.startswith("SLURM_") and k != "SLURM_CONF":
            del e[k]
    return e


def _free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _node_line(host):
    out = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True,
                         check=True).stdout
    fields = dict(f.split("=", 1) for f in out.split("\n")[0].split() if "=" in f)
    keep = ["CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore",
            "RealMemory"]
    return "NodeName=%s %s State=UNKNOWN" % (
        host, " ".join("%s=%s" % (k, fields[k]) for k in keep if k in fields))


def slurm_conf(d, host, ctld_port, slurmd_port, node_line):
    return "\n".join([
        "ClusterName=icltest",
        "SlurmctldHost=%s" % host,
        "SlurmctldPort=%d" % ctld_port,
        "SlurmdPort=%d" % slurmd_port,
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "AuthInfo=socket=%s/munge/sock" % d,
        "StateSaveLocation=%s/state" % d,
        "SlurmdSpoolDir=%s/spool" % d,
        "SlurmctldPidFile=%s/slurmctld.pid" % d,
        "SlurmdPidFile=%s/slurmd.pid" % d,
        "SlurmctldLogFile=%s/log/slurmctld.log" % d,
        "SlurmdLogFile=%s/log/slurmd.log" % d,
        "PlugStackConfig=%s/plugstack.conf" % d,
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "ReturnToService=2",
        "SchedulerType=sched/backfill",
        "MpiDefault=none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobRequeue=1",
        "MinJobAge=600",
        "KillWait=10",
        node_line,
        "PartitionName=debug Nodes=%s Default=YES MaxTime=INFINITE State=UP" % host,
        ""])


def _wait(pred, timeout, step=0.2):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            return v
        time.sleep(step)


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _proc_matches(pid, program, d):
    """pid runs `program` with d on its command line (a recycled pid is not ours)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return (len(argv) > 0 and os.path.basename(argv[0].decode(errors="replace")) == program
            and any(d.encode() in a for a in argv))


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _ancestors():
    out, pid = set(), os.getpid()
    while pid > 1:
        out.add(pid)
        try:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def _job_pids(d):
    """Job processes of the cluster in d: slurmstepd and the processes it started.

    SLURM gives every one SLURM_CONF=d/slurm.conf, and the job's own processes SLURM_JOB_ID,
    in their environment. This process and its ancestors are never listed (a shell that
    exported SLURM_CONF to run this is not a job)."""
    mark = ("SLURM_CONF=" + conf_path(d)).encode()
    skip, out = _ancestors(), []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in skip:
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as f:
                environ = f.read().split(b"\0")
            with open("/proc/%s/comm" % name, "rb") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if mark in environ and (comm == b"slurmstepd" or
                                any(v.startswith(b"SLURM_JOB_ID=") for v in environ)):
            out.append(int(name))
    return out


def _terminate(pids, timeout=10.0):
    pids = [p for p in pids if _alive(p)]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    _wait(lambda: not any(_alive(p) for p in pids), timeout)
    for p in pids:
        if _alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
    _wait(lambda: not any(_alive(p) for p in pids), 5.0)


def _daemon_pids(d):
    out = []
    for program, pidfile in [("slurmd", "slurmd.pid"), ("slurmctld", "slurmctld.pid"),
                             ("munged", "munge/pid")]:
        pid = _read_pid(os.path.join(d, pidfile))
        if pid is not None and _proc_matches(pid, program, d):
            out.append((program, pid))
    return out


def stop(d, quiet=False):
    """Stop the cluster in d and every process it started. Safe to call on any state of d."""
    d = os.path.abspath(d)
    if not os.path.exists(conf_path(d)):
        return
    daemons = dict(_daemon_pids(d))
    if "slurmctld" in daemons and "slurmd" in daemons:   # let SLURM end its jobs first
        try:
            subprocess.run([_which("scancel"), "--user=root"], env=env(d),
                           capture_output=True, timeout=20)
            _wait(lambda: not _job_pids(d) and not subprocess.run(
                [_which("squeue"), "-h"], env=env(d), capture_output=True, text=True,
                timeout=10).stdout.strip(), 20.0, 0.5)
        except (OSError, subprocess.SubprocessError):
            pass   # the daemons may not answer: they are stopped below anyway
    # Daemons in order (slurmd, then slurmctld, then munged), then any stray job process.
    for program in ["slurmd", "slurmctld", "munged"]:
        if program in daemons:
            _terminate([daemons[program]])
    _terminate(_job_pids(d))
    left = [p for _, p in _daemon_pids(d) if _alive(p)] + _job_pids(d)
    if left and not quiet:
        print("slurm_cluster: still alive after KILL: %s" % left, file=sys.stderr)
    with open(os.path.join(d, "stopped"), "w") as f:
        f.write("%s\n" % ("left %s" % left if left else "all stopped"))


def start(d, timeout=30.0):
    """Start munged, slurmctld and slurmd in d (created if needed); wait for the node to be idle."""
    miss = missing_programs()
    if miss:
        raise ClusterError("SLURM test cluster: missing %s; install with "
                           "'apt-get install -y slurm-wlm munge'" % ", ".join(miss))
    if os.geteuid() != 0:
        raise ClusterError("SLURM test cluster: must run as root (SlurmUser=root)")
    d = os.path.abspath(d)
    for sub in ["state", "spool", "log", "munge"]:
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    os.chmod(os.path.join(d, "munge"), 0o700)
    key = os.path.join(d, "munge", "munge.key")
    if not os.path.exists(key):
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
    try:
        os.unlink(os.path.join(d, "stopped"))
    except FileNotFoundError:
        pass
    host = socket.gethostname().split(".")[0]
    ctld_port, slurmd_port = _free_ports(2)
    with open(os.path.join(d, "plugstack.conf"), "w"):
        pass
    tmp = conf_path(d) + ".tmp"
    with open(tmp, "w") as f:
        f.write(slurm_conf(d, host, ctld_port, slurmd_port, _node_line(host)))
    os.replace(tmp, conf_path(d))
    try:
        m = os.path.join(d, "munge")
        subprocess.run([_which("munged"), "--force", "--socket=%s/sock" % m,
                        "--key-file=%s" % key, "--pid-file=%s/pid" % m,
                        "--log-file=%s/log" % m, "--seed-file=%s/seed" % m],
                       check=True, capture_output=True, timeout=20)
        if not _wait(lambda: os.path.exists(os.path.join(m, "sock")), 10.0):
            raise ClusterError("munged did not create its socket; see %s/log" % m)
        e = env(d)
        for daemon in ["slurmctld", "slurmd"]:
            r = subprocess.run([_which(daemon), "-f", conf_path(d)], env=e,
                               capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise ClusterError("%s failed (%d): %s%s; see %s/log/%s.log" % (
                    daemon, r.returncode, r.stdout, r.stderr, d, daemon))

        def idle():
            r = subprocess.run([_which("sinfo"), "-h", "-N", "-o", "%T"], env=e,
                               capture_output=True, text=True, timeout=10)
            return r.returncode == 0 and r.stdout.strip() == "idle"
        t0 = time.monotonic()
        if not _wait(idle, timeout, 0.5):
            raise ClusterError("node not idle after %.0f s; sinfo: %s\nslurmctld log:\n%s" % (
                timeout, subprocess.run([_which("sinfo"), "-N", "-l"], env=e,
                                        capture_output=True, text=True).stdout,
                log_tail(d, "slurmctld")))
        return time.monotonic() - t0
    except BaseException:
        stop(d, quiet=True)
        raise


def log_tail(d, daemon, n=40):
    try:
        with open(os.path.join(d, "log", daemon + ".log"), errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as ex:
        return "(%s)" % ex


def watch(d, pid, seconds):
    """Stop the cluster in d once process pid has ended or after seconds, whichever is first.

    A test starts this in its own session next to the cluster: if the test is killed (a CTest
    timeout sends SIGKILL, which no finally block sees), the daemons are still stopped. It
    exits without doing anything once d/stopped exists (stop() writes it)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end and _alive(pid):
        if os.path.exists(os.path.join(d, "stopped")):
            return
        time.sleep(1.0)
    if not os.path.exists(os.path.join(d, "stopped")):
        stop(d)


def main(argv):
    if len(argv) == 5 and argv[1] == "watch":
        watch(os.path.abspath(argv[2]), int(argv[3]), float(argv[4]))
        return 0
    if len(argv) != 3 or argv[1] not in ("start", "stop", "env"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    d = os.path.abspath(argv[2])
    if argv[1] == "env":
        print("export SLURM_CONF=%s" % conf_path(d))
        return 0
    if argv[1] == "stop":
        stop(d)
        return 0
    try:
        t = start(d)
    except ClusterError as ex:
        print(ex, file=sys.stderr)
        return 3
    print("slurm_cluster: node idle after %.1f s; export SLURM_CONF=%s" % (t, conf_path(d)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

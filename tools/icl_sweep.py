#!/usr/bin/python3
"""icl_sweep: expands a sweep file into cells and runs, checks and gathers them (docs/sweeps.md).

    icl_sweep.py plan   SWEEP.toml [--root DIR] [--quick] [--runner PATH] [--no-check]
    icl_sweep.py run    SWEEP.toml [--root DIR] [--quick] [--runner PATH] [-P N] [-T N] [--only K=V]
                        [--retries K] [--progress-every S]
    icl_sweep.py slurm  SWEEP.toml [--root DIR] [--quick] [--runner PATH] [-P K] [--dry-run]
    icl_sweep.py status SWEEP.toml [--root DIR] [--quick]
    icl_sweep.py gather SWEEP.toml [--root DIR] [--quick] [--partial]

Why Python's standard library and nothing else: the driver must run wherever the cell runner runs
(a laptop, a cluster's login node) without installing anything; `tomllib` (3.11) reads the sweep
files, `json`/`csv`/`hashlib` write and identify the cells, and both executors talk to their
programs (the cell runner, sbatch/scontrol) through command lines and text, which `subprocess`
does. Run it with Debian's /usr/bin/python3.

Module interface (for tools/icl_sweep_slurm.py and the tests):

* `load_sweep(path, quick) -> Sweep` validates a sweep file; `expand(sweep, root) -> [Cell]` lists
  its cells in cell order; `prepare(sweep, cells)` writes their config.json files.
* `Sweep`: path, name, description, seeds, fixed, axes, zips, select, resources (plain values).
* `Cell`: id (12 hex digits), dir (absolute Path: <root>/cells/<id>), settings (dict, canonical
  values, run.seed included), grid (tuple of (key, value): the axis keys in file order, then the
  zip keys in file order, then run.seed).
* `write_atomic(path, data)`, `append_attempt(cell_dir, entry)`, `read_status(cell_dir)`,
  `is_done(cell_dir)` are the helpers the executors share.
* The `slurm` subcommand imports tools/icl_sweep_slurm.py lazily and calls
  `icl_sweep_slurm.submit(sweep, root, cells, runner, resources, dry_run, max_parallel) -> int`:
  sweep the Sweep (after --quick); root the absolute Path of the sweep's root; cells the cells
  that are not done (config.json written, cell order; never empty: when every cell is done the
  driver says so and does not call it); runner the absolute Path of the cell runner (with
  --dry-run it may not exist yet); resources a dict copy of [resources]; dry_run a bool;
  max_parallel the -P value (int) or None. The int it returns is the driver's exit status.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import csv
import dataclasses
import datetime
import errno
import fcntl
import hashlib
import io
import itertools
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

PROG = "icl_sweep"
SEED_KEY = "run.seed"
TOP_KEYS = ("name", "description", "seeds", "fixed", "axes", "zip", "select", "resources", "quick")
QUICK_KEYS = ("fixed", "axes", "zip", "seeds")
SELECT_KEYS = ("x", "by", "seeds")
METRICS_HEADER = ["metric", "a", "b", "layer", "prefix", "value", "ci95"]
EXIT_INTERRUPTED = 75  # the cell runner's "stopped by a signal, checkpoint written" (sweeps.md §3)
EXIT_CONFIG = 2  # the cell runner's "bad configuration" (not retried)
MAX_RESUMES = 100  # a cell exiting 75 more often in one `run` (nobody signalled us) has failed
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUNNER = Path("build") / "examples" / "icl_cell"


class SweepError(Exception):
    """A user error (bad sweep file, argument, folder): printed as `icl_sweep: <message>`."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------------------------
# Values, canonical JSON, ids, atomic files


def canonical_value(v):
    """An integral float becomes an int (0.0 and 0 are one setting); other scalars are unchanged."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def canonical_json(settings: dict) -> str:
    """Keys sorted, no spaces, integral floats as integers, other floats as Python's repr (the
    shortest decimal that round-trips), non-ASCII characters as \\uXXXX escapes."""
    return json.dumps({k: canonical_value(v) for k, v in settings.items()}, sort_keys=True,
                      separators=(",", ":"), allow_nan=False)


def cell_id(settings: dict) -> str:
    return hashlib.sha256(canonical_json(settings).encode("utf-8")).hexdigest()[:12]


def format_value(v) -> str:
    """A setting as text (tables, gathered.csv): JSON spelling for numbers and booleans, the
    string itself for strings."""
    v = canonical_value(v)
    if isinstance(v, str):
        return v
    return json.dumps(v)


def write_atomic(path: Path, data) -> None:
    """Writes `data` (str or bytes) to `path` so that a kill at any moment leaves the old file or
    the new one: a temporary file in the same folder, flushed and fsync'ed, renamed over `path`,
    then the folder fsync'ed so that the rename itself is on disk."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}.{threading.get_ident()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def dump_json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"


def read_json(path: Path):
    """The parsed file, None if it does not exist; SweepError if it is not JSON."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SweepError(f"{path}: not valid JSON ({e})") from None


def read_status(cell_dir: Path):
    """status.json as a dict (the runner's), None if absent, {"state": "unreadable"} if broken."""
    try:
        st = read_json(Path(cell_dir) / "status.json")
    except SweepError:
        return {"state": "unreadable"}
    if st is not None and not isinstance(st, dict):
        return {"state": "unreadable"}
    return st


def is_done(cell_dir: Path) -> bool:
    st = read_status(cell_dir)
    return bool(st) and st.get("state") == "done" and (Path(cell_dir) / "metrics.csv").is_file()


def cell_state(cell_dir: Path) -> str:
    st = read_status(cell_dir)
    if not st:
        return "pending"
    state = str(st.get("state", "?"))
    if state == "done" and not (Path(cell_dir) / "metrics.csv").is_file():
        return "done-no-metrics"
    return state


_SHA_CACHE = {}


def runner_sha256(path: Path) -> str:
    """The SHA-256 of the cell runner's file (hex), recorded with every attempt so that a result
    says which build produced it (a resumed cell may have been trained by two). Cached by (path,
    size, mtime): the runner is hashed again only when it was rebuilt. "" when unreadable."""
    try:
        st = os.stat(path)
    except OSError:
        return ""
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except OSError:
            return ""
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def recorded_runners(cell_dir: Path) -> list:
    """The runner SHA-256s the cell's earlier attempts recorded (attempts.json of the local
    executor, then slurm_attempts.jsonl of the SLURM one), each once, ordered by its latest
    attempt (the last is the build of the latest recorded attempt); attempts from before the field
    existed record none."""
    out = []
    try:
        local = read_json(Path(cell_dir) / "attempts.json")
    except (OSError, ValueError):
        local = None
    entries = list(local) if isinstance(local, list) else []
    try:
        with open(Path(cell_dir) / "slurm_attempts.jsonl", encoding="utf-8") as f:
            for line in f:
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
    except OSError:
        pass
    for e in entries:
        sha = e.get("runner_sha256") if isinstance(e, dict) else None
        if isinstance(sha, str) and sha:
            if sha in out:
                out.remove(sha)
            out.append(sha)
    return out


def append_attempt(cell_dir: Path, entry: dict) -> None:
    """Appends one entry to <cell>/attempts.json (a JSON list), atomically."""
    path = Path(cell_dir) / "attempts.json"
    try:
        attempts = read_json(path)
    except SweepError:
        os.replace(path, path.with_name("attempts.json.unreadable"))  # keep it, start anew
        attempts = None
    if not isinstance(attempts, list):
        attempts = []
    attempts.append(entry)
    write_atomic(path, dump_json(attempts))


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# The sweep file


@dataclasses.dataclass
class Sweep:
    path: Path
    name: str
    description: str
    seeds: list
    fixed: dict
    axes: dict  # key -> list of values, file order
    zips: list  # [ {key -> list of values} ], file order
    select: dict | None  # {"x": [keys], "by": metric} or None
    resources: dict

    @property
    def axis_keys(self) -> list:
        """The keys that vary between cells, as gathered.csv's columns: axes, then zip keys."""
        return list(self.axes) + [k for z in self.zips for k in z]


@dataclasses.dataclass
class Cell:
    id: str
    dir: Path
    settings: dict
    grid: tuple  # ((key, value), ...): axis keys, zip keys, run.seed


def _key(k: str) -> str:
    return json.dumps(k)  # "model.layers", quoted as in the sweep file


def _check_scalar(where: str, v) -> None:
    if isinstance(v, bool) or isinstance(v, (int, str)):
        return
    if isinstance(v, float):
        if not math.isfinite(v):
            raise SweepError(f"{where}: {v!r} is not a finite number")
        return
    if isinstance(v, dict):
        raise SweepError(f"{where}: a table, expected a number, boolean or string (a dotted key "
                         f"must be quoted: \"run.steps\" = 10, not run.steps = 10)")
    if isinstance(v, list):
        raise SweepError(f"{where}: a list, expected a number, boolean or string")
    raise SweepError(f"{where}: a {type(v).__name__} ({v}), expected a number, boolean or string")


def _check_key(where: str, k) -> None:
    if not isinstance(k, str) or not k or k != k.strip():
        raise SweepError(f"{where}: {k!r} is not a setting name")
    if k == SEED_KEY:
        raise SweepError(f"{where}: {_key(k)} is set by `seeds`, not here")


def _check_values(where: str, values, zip_list=False) -> None:
    """A list of scalars; an axis's values must differ (a zip list's may repeat: its positions
    must differ, which _check_grid checks)."""
    if isinstance(values, dict):
        _check_scalar(where, values)  # the dotted-key hint
    if not isinstance(values, list):
        raise SweepError(f"{where}: expected a list of values, got {type(values).__name__} "
                         f"{values!r}")
    if not values and not zip_list:
        raise SweepError(f"{where}: an empty list (a sweep over no values has no cells)")
    seen = {}
    for i, v in enumerate(values):
        _check_scalar(f"{where}[{i}]", v)
        c = json.dumps(canonical_value(v))
        if c in seen and not zip_list:
            raise SweepError(f"{where}: value {v!r} (position {i}) repeats {values[seen[c]]!r} "
                             f"(position {seen[c]}); the cells would be the same")
        seen[c] = i


def _table(where: str, t) -> dict:
    if t is None:
        return {}
    if not isinstance(t, dict):
        raise SweepError(f"{where}: expected a table, got {type(t).__name__} {t!r}")
    return t


def _check_seeds(where: str, seeds) -> list:
    if not isinstance(seeds, list) or not seeds:
        raise SweepError(f"{where}: expected a non-empty list of integers, got {seeds!r}")
    for i, s in enumerate(seeds):
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise SweepError(f"{where}[{i}]: {s!r} is not an integer >= 0")
    if len(set(seeds)) != len(seeds):
        dup = [s for s in seeds if seeds.count(s) > 1][0]
        raise SweepError(f"{where}: seed {dup} appears more than once")
    return list(seeds)


def _check_grid(fixed: dict, axes: dict, zips: list, ctx: str) -> None:
    """Cross-table checks: each key in one place only, zip lists of one length, no repeated zip
    position. `ctx` is '' or ' (with [quick] applied)'."""
    owner = {}
    for k, v in fixed.items():
        _check_key(f"fixed.{_key(k) if isinstance(k, str) else k}", k)
        _check_scalar(f"fixed.{_key(k)}{ctx}", v)
        owner[k] = "[fixed]"
    for k, vals in axes.items():
        _check_key(f"axes.{_key(k) if isinstance(k, str) else k}", k)
        if k in owner:
            raise SweepError(f"axes.{_key(k)}: the key is also in {owner[k]}{ctx}; a setting is "
                             f"either fixed or an axis")
        _check_values(f"axes.{_key(k)}{ctx}", vals)
        owner[k] = "[axes]"
    for g, z in enumerate(zips):
        if not isinstance(z, dict):
            raise SweepError(f"zip[{g}]: expected a table of lists, got {z!r}")
        if not z:
            raise SweepError(f"zip[{g}]: an empty [[zip]] table")
        lengths = {}
        for k, vals in z.items():
            _check_key(f"zip[{g}].{_key(k) if isinstance(k, str) else k}", k)
            if k in owner:
                raise SweepError(f"zip[{g}].{_key(k)}: the key is also in {owner[k]}{ctx}; a "
                                 f"setting belongs to one table")
            _check_values(f"zip[{g}].{_key(k)}{ctx}", vals, zip_list=True)
            owner[k] = f"[[zip]] group {g}"
            lengths[k] = len(vals)
        if len(set(lengths.values())) != 1:
            desc = ", ".join(f"{_key(k)} has {n}" for k, n in lengths.items())
            raise SweepError(f"zip[{g}]: the lists must have one length{ctx}: {desc}")
        n = next(iter(lengths.values()))
        if n == 0:
            raise SweepError(f"zip[{g}]: empty lists (a sweep over no values has no cells)")
        seen = {}
        for i in range(n):
            pos = json.dumps([canonical_value(z[k][i]) for k in z])
            if pos in seen:
                raise SweepError(f"zip[{g}]: position {i} repeats position {seen[pos]}{ctx}; the "
                                 f"cells would be the same")
            seen[pos] = i


def load_sweep(path, quick: bool = False) -> Sweep:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SweepError(f"cannot read the sweep file {path}: {e.strerror}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SweepError(f"{path}: not a valid TOML file: {e}") from None
    try:
        return _parse_sweep(path, doc, quick)
    except SweepError as e:
        raise SweepError(f"{path}: {e}", e.status) from None


def _parse_sweep(path: Path, doc: dict, quick: bool) -> Sweep:
    unknown = [k for k in doc if k not in TOP_KEYS]
    if unknown:
        raise SweepError(f"unknown top-level key {_key(unknown[0])}; expected one of "
                         f"{', '.join(TOP_KEYS)}")
    name = doc.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise SweepError(f"name: expected a string of letters, digits, '.', '_', '-' (it names the "
                         f"root folder), got {name!r}")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise SweepError(f"description: expected a string, got {description!r}")
    if "seeds" not in doc:
        raise SweepError("seeds: missing; expected a list of integers such as seeds = [0, 1, 2]")
    seeds = _check_seeds("seeds", doc["seeds"])
    fixed = dict(_table("fixed", doc.get("fixed")))
    axes = {k: list(v) if isinstance(v, list) else v
            for k, v in _table("axes", doc.get("axes")).items()}
    zips = doc.get("zip", [])
    if isinstance(zips, dict):
        raise SweepError("zip: a table; expected an array of tables, written [[zip]]")
    if not isinstance(zips, list):
        raise SweepError(f"zip: expected an array of tables ([[zip]]), got {zips!r}")
    zips = [dict(z) if isinstance(z, dict) else z for z in zips]
    _check_grid(fixed, axes, zips, "")

    select = doc.get("select")
    if select is not None:
        select = _table("select", select)
        bad = [k for k in select if k not in SELECT_KEYS]
        if bad:
            raise SweepError(f"select.{bad[0]}: unknown key; expected x, by and seeds")
        x = select.get("x")
        if isinstance(x, str):
            x = [x]
        if not isinstance(x, list) or not all(isinstance(k, str) for k in x):
            raise SweepError(f"select.x: expected a list of axis keys, got {x!r}")
        grid_keys = list(axes) + [k for z in zips for k in z]
        for k in x:
            if k not in grid_keys:
                raise SweepError(f"select.x: {_key(k)} is not a key of [axes] or [[zip]]")
        if len(set(x)) != len(x):
            raise SweepError(f"select.x: a key appears twice in {x!r}")
        by = select.get("by")
        if not isinstance(by, str) or not by:
            raise SweepError(f"select.by: expected the name of a metric (metrics.csv's metric "
                             f"column), got {by!r}")
        sel_seeds = select.get("seeds")
        if sel_seeds is not None:
            if (not isinstance(sel_seeds, list) or not sel_seeds
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in sel_seeds)
                    or len(set(sel_seeds)) != len(sel_seeds)):
                raise SweepError(f"select.seeds: expected a non-empty list of distinct seeds, got "
                                 f"{sel_seeds!r}")
        select = {"x": list(x), "by": by, "seeds": None if sel_seeds is None else list(sel_seeds)}

    resources = dict(_table("resources", doc.get("resources")))
    for k, v in resources.items():
        _check_scalar(f"resources.{k}", v)

    q = _table("quick", doc.get("quick"))
    bad = [k for k in q if k not in QUICK_KEYS]
    if bad:
        raise SweepError(f"quick.{bad[0]}: unknown key; [quick] may set {', '.join(QUICK_KEYS)}")
    if q:  # checked with or without --quick, so that `plan` finds a broken [quick] table
        qfixed, qaxes = dict(fixed), dict(axes)
        qzips = [dict(z) for z in zips]
        for k, v in _table("quick.fixed", q.get("fixed")).items():
            _check_key(f"quick.fixed.{_key(k)}", k)
            if k in axes or any(k in z for z in zips):
                raise SweepError(f"quick.fixed.{_key(k)}: the key is an axis; replace its values "
                                 f"in quick.axes (or quick.zip) instead")
            _check_scalar(f"quick.fixed.{_key(k)}", v)
            qfixed[k] = v
        for k, v in _table("quick.axes", q.get("axes")).items():
            if k not in axes:
                raise SweepError(f"quick.axes.{_key(k)}: not a key of [axes] (quick replaces the "
                                 f"values of existing axes only)")
            qaxes[k] = v
        for k, v in _table("quick.zip", q.get("zip")).items():
            groups = [z for z in qzips if k in z]
            if not groups:
                raise SweepError(f"quick.zip.{_key(k)}: not a key of any [[zip]] group (quick "
                                 f"replaces the values of existing zip keys only)")
            groups[0][k] = v
        qseeds = _check_seeds("quick.seeds", q["seeds"]) if "seeds" in q else seeds
        _check_grid(qfixed, qaxes, qzips, " (with [quick] applied)")
        _check_select_seeds(select, qseeds, " (with [quick] applied)")
        if quick:
            fixed, axes, zips, seeds = qfixed, qaxes, qzips, qseeds
    _check_select_seeds(select, seeds, "")

    return Sweep(path=path, name=name, description=description, seeds=seeds, fixed=fixed,
                 axes=axes, zips=zips, select=select, resources=resources)


def _check_select_seeds(select, seeds, ctx):
    if select is None or select["seeds"] is None:
        return
    missing = [v for v in select["seeds"] if v not in seeds]
    if missing:
        raise SweepError(f"select.seeds: {missing[0]} is not one of the sweep's seeds {seeds}{ctx}")


def _sort_value(v):
    """Orders values of one key: booleans, then numbers (numerically), then strings."""
    if isinstance(v, bool):
        return (0, int(v), "")
    if isinstance(v, (int, float)):
        return (1, v, "")
    return (2, 0, v)


def expand(sweep: Sweep, root) -> list:
    """The cells, in cell order: sorted by the values of the axis keys (file order), then the zip
    keys (file order), then run.seed; each key's values compare numerically (booleans first,
    strings last), so the order does not depend on how a list is written in the file."""
    root = Path(root).absolute()
    axis_keys = list(sweep.axes)
    groups = [(list(z), [tuple(z[k][i] for k in z) for i in range(len(next(iter(z.values()))))])
              for z in sweep.zips]
    cells = []
    for combo in itertools.product(*(sweep.axes[k] for k in axis_keys)):
        for zcombo in itertools.product(*(pos for _, pos in groups)):
            for seed in sweep.seeds:
                grid = list(zip(axis_keys, combo))
                for (keys, _), pos in zip(groups, zcombo):
                    grid += list(zip(keys, pos))
                grid.append((SEED_KEY, seed))
                grid = tuple((k, canonical_value(v)) for k, v in grid)
                settings = {k: canonical_value(v) for k, v in sweep.fixed.items()}
                settings.update(grid)
                settings = dict(sorted(settings.items()))
                cid = cell_id(settings)
                cells.append(Cell(id=cid, dir=root / "cells" / cid, settings=settings, grid=grid))
    cells.sort(key=lambda c: tuple(_sort_value(v) for _, v in c.grid))
    ids = collections.Counter(c.id for c in cells)
    dup = [i for i, n in ids.items() if n > 1]
    if dup:  # only a SHA-256 prefix collision could get here: the grid checks refuse repeats
        raise SweepError(f"two cells share the id {dup[0]}")
    return cells


def config_doc(sweep: Sweep, cell: Cell) -> dict:
    return {"sweep": sweep.name, "cell": cell.id, "settings": cell.settings}


def _config_differences(old, new: dict) -> list:
    if not isinstance(old, dict):
        return ["the file is not a JSON object"]
    diffs = []
    for k in ("sweep", "cell"):
        if old.get(k) != new[k]:
            diffs.append(f"{k}: folder has {json.dumps(old.get(k))}, sweep has "
                         f"{json.dumps(new[k])}")
    extra = [k for k in old if k not in new]
    diffs += [f"{k}: in the folder only" for k in extra]
    os_ = old.get("settings")
    if not isinstance(os_, dict):
        diffs.append("settings: not a JSON object in the folder")
        return diffs
    for k in sorted(set(os_) | set(new["settings"])):
        if k not in os_:
            diffs.append(f"settings.{_key(k)}: not in the folder, sweep has "
                         f"{json.dumps(new['settings'][k])}")
        elif k not in new["settings"]:
            diffs.append(f"settings.{_key(k)}: folder has {json.dumps(os_[k])}, not in the sweep")
        elif json.dumps(canonical_value(os_[k])) != json.dumps(new["settings"][k]):
            diffs.append(f"settings.{_key(k)}: folder has {json.dumps(os_[k])}, sweep has "
                         f"{json.dumps(new['settings'][k])}")
    return diffs


def prepare(sweep: Sweep, cells: list) -> list:
    """Writes each cell's config.json once (creating its folder); refuses a folder whose config.json
    differs from the sweep's. Returns the cells whose config.json this call wrote."""
    new = []
    for c in cells:
        want = config_doc(sweep, c)
        path = c.dir / "config.json"
        old = read_json(path)
        if old is None:
            c.dir.mkdir(parents=True, exist_ok=True)
            write_atomic(path, dump_json(want))
            new.append(c)
            continue
        diffs = _config_differences(old, want)
        if diffs:
            raise SweepError(f"cell {c.id}: {path} differs from the sweep ({'; '.join(diffs)}); "
                             f"remove the cell's folder to run it with the sweep's settings, or "
                             f"use another --root")
    return new


# ---------------------------------------------------------------------------------------------
# Output helpers


def print_table(rows: list, out=None) -> None:
    out = out or sys.stdout
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("  ".join(s.ljust(w) for s, w in zip(r, widths)).rstrip() + "\n")


def grid_header(sweep: Sweep) -> list:
    return sweep.axis_keys + [SEED_KEY]


def grid_cells(cell: Cell) -> list:
    return [format_value(v) for _, v in cell.grid]


def state_counts(states) -> str:
    n = collections.Counter(states)
    return ", ".join(f"{v} {k}" for k, v in sorted(n.items(), key=lambda kv: (-kv[1], kv[0])))


def resolve_runner(arg, must_exist=True) -> Path:
    if arg:
        p = Path(arg)
        origin = f"--runner {arg}"
    elif os.environ.get("ICL_CELL"):
        p = Path(os.environ["ICL_CELL"])
        origin = f"$ICL_CELL ({p})"
    else:
        p = REPO_ROOT / DEFAULT_RUNNER
        if must_exist and not p.is_file():
            raise SweepError(f"no cell runner: --runner is not given, $ICL_CELL is not set, and "
                             f"the default {p} does not exist (build the icl_cell target, or pass "
                             f"--runner PATH or set ICL_CELL)")
        origin = str(p)
    p = p.absolute()
    if must_exist:
        if not p.is_file():
            raise SweepError(f"cell runner {origin}: no such file")
        if not os.access(p, os.X_OK):
            raise SweepError(f"cell runner {origin}: not executable")
    return p


# ---------------------------------------------------------------------------------------------
# plan


def cmd_plan(args, sweep: Sweep, cells: list) -> int:
    new = prepare(sweep, cells)
    runner = None if args.no_check else resolve_runner(args.runner)
    states = [cell_state(c.dir) for c in cells]
    rows = [["cell", "state"] + grid_header(sweep)]
    rows += [[c.id, s] + grid_cells(c) for c, s in zip(cells, states)]
    print_table(rows)
    print(f"{len(cells)} cells ({state_counts(states)}); {len(new)} new config.json files under "
          f"{cells[0].dir.parent if cells else args.root}")
    if runner is None:
        return 0
    to_check = [c for c, s in zip(cells, states) if s != "done"]

    def check(c):
        try:
            r = subprocess.run([str(runner), "--check", str(c.dir)], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, errors="replace")
        except OSError as e:
            raise SweepError(f"cannot start the cell runner {runner}: {e}") from None
        return c, r

    refused = collections.defaultdict(list)  # (exit, stderr) -> [cell ids]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as ex:
        for c, r in ex.map(check, to_check):
            if r.returncode != 0:
                refused[(r.returncode, r.stderr.strip())].append(c.id)
    if not refused:
        print(f"{runner.name} --check: {len(to_check)} cells valid")
        return 0
    status = 0
    for (code, err), ids in refused.items():
        what = "refused" if code == EXIT_CONFIG else f"failed (exit {code}) on"
        shown = ", ".join(ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")
        print(f"{PROG}: {runner.name} --check {what} {len(ids)} cells ({shown}):\n{err}",
              file=sys.stderr)
        status = max(status, EXIT_CONFIG if code == EXIT_CONFIG else 1)
    return status


# ---------------------------------------------------------------------------------------------
# run: the local executor


class _Job:
    def __init__(self, cell, proc, lock_fd, log, start, attempt):
        self.cell, self.proc, self.lock_fd, self.log = cell, proc, lock_fd, log
        self.start, self.attempt = start, attempt
        self.last_line = ""
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        """Copies the runner's stderr into log.txt, remembering its last non-empty line."""
        for line in iter(self.proc.stderr.readline, b""):
            self.log.write(line)
            s = line.decode("utf-8", "replace").strip()
            if s:
                self.last_line = s
        self.proc.stderr.close()


def _try_lock(cell: Cell):
    """An exclusive flock on <cell>/.lock, or None if another process holds it. The runner inherits
    the descriptor, so the lock lasts while the runner lives even if this driver dies."""
    fd = os.open(cell.dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def _fmt_eta(seconds) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _num(x):
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
    return x if ok else None


# The cost of one training step per layer against the hidden size H, relative to H = 64: medians
# measured in the committed cells of docs/results (d = 8, n = 40, batch 64, two cells at a time on
# a 2-core AMD EPYC, -march=native; docs/reproduction.md): 0.012, 0.017, 0.030, 0.11 and 0.36
# core-seconds at H = 16 ... 256. Small widths are dominated by the per-token work that does not
# grow with H^2 (softmax, LayerNorm, the data), large ones by the GEMMs; between the points the
# ETA interpolates on log-log axes, below 16 with the slope of 16..32 and above 256 with H^2 (the
# GEMMs' FLOPs). Another machine has other ratios, but the same shape; the ETA is an estimate.
WIDTH_COST = ((16, 0.40), (32, 0.57), (64, 1.0), (128, 3.7), (256, 12.0))


def width_cost(hidden) -> float:
    """A step's cost per layer at width `hidden`, relative to H = 64 (WIDTH_COST)."""
    h = _num(hidden)
    if h is None or h <= 0:
        return 1.0
    pts = WIDTH_COST
    if h <= pts[0][0]:
        (h0, c0), (h1, c1) = pts[0], pts[1]
        return c0 * (h / h0) ** (math.log(c1 / c0) / math.log(h1 / h0))
    if h >= pts[-1][0]:
        return pts[-1][1] * (h / pts[-1][0]) ** 2
    for (h0, c0), (h1, c1) in zip(pts, pts[1:]):
        if h0 <= h <= h1:
            t = math.log(h / h0) / math.log(h1 / h0)
            return math.exp(math.log(c0) + t * (math.log(c1) - math.log(c0)))
    return 1.0


def cell_cost(settings: dict) -> float:
    """The relative cost of one training step of a cell: model.layers x width_cost(model.hidden)
    x run.batch / 64 x run.task.n / 40 (each factor 1 when the setting is absent; a step of an
    L-layer model costs about L one-layer steps, and the columns of every product grow with the
    batch and the context). Only ratios between cells matter: the ETA divides work by the rate of
    work of the running cells, counted in the same units."""
    cost = 1.0
    layers = _num(settings.get("model.layers"))
    cost *= layers if layers is not None and layers > 0 else 1
    cost *= width_cost(settings.get("model.hidden"))
    for key, ref in (("run.batch", 64), ("run.task.n", 40)):
        v = _num(settings.get(key))
        if v is not None and v > 0:
            cost *= v / ref
    return cost


def waiting_shares(sweep, waiting: list) -> dict:
    """{id: share} for the cells that wait on a staged selection: of the k configurations of a
    select.x group, the selection keeps one, so each waiting cell counts 1/k of its work."""
    groups = {}
    for c in waiting:
        groups.setdefault(tuple(json.dumps(c.settings[k]) for k in sweep.select["x"]), []).append(c)
    out = {}
    for members in groups.values():
        k = len({_combo(sweep, c) for c in members})
        for c in members:
            out[c.id] = 1.0 / max(1, k)
    return out


class LocalExecutor:
    def __init__(self, cells, runner, parallel, threads, retries, progress_every, out=None,
                 refill=None):
        self.cells, self.runner = cells, runner
        # staged selection: refill() -> (needed, waiting), called at the start and after every
        # finished cell; needed cells not yet queued, run or failed join the queue
        self.refill = refill
        self.waiting = []
        self.waiting_share = {}  # id -> the expected share of a waiting cell that will run
        self.parallel, self.threads, self.retries = parallel, threads, retries
        self.progress_every = progress_every
        self.out = out or sys.stderr
        self.host = socket.gethostname()
        self.stopping = False
        self.running = {}  # id -> _Job
        self.failed = {}  # id -> reason
        self.busy = []
        self.done = set()
        self.failures = collections.Counter()
        self.resumes = collections.Counter()
        self.launched_sha = {}  # id -> the runner's sha256 at the cell's latest launch

    # -- signals: stop launching, pass SIGTERM on to every runner (each signal once more: the
    #    runner's second signal exits at once)
    def _on_signal(self, signum, frame):
        self.stopping = True
        for job in list(self.running.values()):
            try:
                job.proc.send_signal(signal.SIGTERM)
            except OSError:
                pass

    def _launch(self, cell: Cell) -> bool:
        lock_fd = _try_lock(cell)
        if lock_fd is None:
            self.busy.append(cell.id)
            print(f"{PROG}: cell {cell.id} is busy (another icl_sweep or runner holds "
                  f"{cell.dir / '.lock'}); not running it", file=self.out)
            return False
        cmd = [str(self.runner), "--cell", str(cell.dir), "--threads", str(self.threads)]
        log = open(cell.dir / "log.txt", "ab", buffering=0)
        attempt = self.failures[cell.id] + self.resumes[cell.id] + 1
        start = now_iso()
        sha = self.launched_sha[cell.id] = runner_sha256(self.runner)  # as launched, not at the end
        log.write(f"=== {PROG} local attempt {attempt} on {self.host} at {start}: "
                  f"{' '.join(cmd)} (runner sha256 {sha[:12] or 'unreadable'})\n".encode())
        before = recorded_runners(cell.dir)
        if sha and before and before[-1] != sha:
            # allowed (a fixed or rebuilt runner may resume a checkpoint), never silent: the
            # result then comes from two builds, which the attempts and the gather show
            note = (f"{PROG}: cell {cell.id} resumes with another runner build: sha256 "
                    f"{sha[:12]}, its earlier attempts {', '.join(b[:12] for b in before)}")
            log.write((note + "\n").encode())
            print(note, file=self.out)
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.PIPE, pass_fds=(lock_fd,),
                                    start_new_session=True)  # a terminal's ^C reaches us only
        except OSError as e:
            msg = f"cannot start the cell runner: {e}"
            log.write(f"{PROG}: {msg}\n".encode())
            log.close()
            os.close(lock_fd)
            self._record(cell, start, None, msg, attempt)
            self.failed[cell.id] = msg
            return False
        self.running[cell.id] = _Job(cell, proc, lock_fd, log, start, attempt)
        if self.stopping:  # a signal came while it was starting
            proc.send_signal(signal.SIGTERM)
        return True

    def _refill(self, queue: collections.deque) -> None:
        needed, self.waiting = self.refill()
        known = ({c.id for c in queue} | set(self.running) | self.done | set(self.failed)
                 | set(self.busy))
        for c in needed:
            if c.id not in known and not is_done(c.dir):
                queue.append(c)

    def _next_launchable(self, queue: collections.deque):
        """Pops and returns the first queued cell that does not wait on a sibling, or None. A cell
        with run.adopt_siblings = true waits while a running cell has the same training
        (training_key) and has not written its model file yet: once it has (it evaluates), this
        one starts and adopts the model instead of training the same bits again beside it
        (docs/sweeps.md §3; the Fig. 4 probe ablations)."""
        training = {training_key(j.cell) for j in self.running.values()
                    if not (j.cell.dir / "model.safetensors").exists()}  # still training
        for i, cell in enumerate(queue):
            if cell.settings.get("run.adopt_siblings") is True and training_key(cell) in training:
                continue
            del queue[i]
            return cell
        return None

    def _record(self, cell, start, code, error, attempt):
        append_attempt(cell.dir, {"executor": "local", "host": self.host, "attempt": attempt,
                                  "threads": self.threads, "start": start, "end": now_iso(),
                                  "exit": code, "error": error,
                                  "runner": str(self.runner),
                                  "runner_sha256": self.launched_sha.get(cell.id, "")})

    def _finish(self, job: _Job, queue: collections.deque) -> None:
        code = job.proc.returncode
        if code < 0:
            code = 128 - code  # killed by a signal: the shell's spelling
        job.thread.join()
        error = job.last_line
        cell = job.cell
        if code == 0 and not is_done(cell.dir):
            st = read_status(cell.dir) or {}
            metrics = "present" if (cell.dir / "metrics.csv").is_file() else "missing"
            error = (f"exit 0 but the cell is not done (status.json state "
                     f"{st.get('state')!r}, metrics.csv {metrics})")
            job.log.write(f"{PROG}: {error}\n".encode())
            code_kind = "error"
        elif code == 0:
            code_kind = "done"
        elif code == EXIT_INTERRUPTED:
            code_kind = "interrupted"
        elif code == EXIT_CONFIG:
            code_kind = "config"
        else:
            code_kind = "error"
        self._record(cell, job.start, code, error, job.attempt)
        job.log.close()
        os.close(job.lock_fd)
        del self.running[cell.id]

        if code_kind == "done":
            self.done.add(cell.id)
        elif code_kind == "config":
            self.failed[cell.id] = f"exit {code} (bad configuration, not retried): {error}"
        elif self.stopping:
            pass  # left as it is; the next `run` resumes it
        elif code_kind == "interrupted":
            self.resumes[cell.id] += 1
            if self.resumes[cell.id] > MAX_RESUMES:
                self.failed[cell.id] = f"exited 75 (interrupted) {MAX_RESUMES} times"
            else:
                queue.appendleft(cell)  # resume it from its checkpoint
        else:
            self.failures[cell.id] += 1
            if self.failures[cell.id] <= self.retries:
                print(f"{PROG}: cell {cell.id} failed (exit {code}): {error}; retry "
                      f"{self.failures[cell.id]} of {self.retries}", file=self.out)
                queue.append(cell)
            else:
                self.failed[cell.id] = f"exit {code}: {error}"

    def progress(self, queue) -> str:
        """The progress line, from the cells' status.json: steps/s is the sum over the running
        cells; ETA is the work left over the running cells' rate of work (cell_cost: a cell's work
        is its steps times the cost of one of its steps relative to the others, from its depth,
        width, batch and context length). A cell without status.json counts run.steps, or the mean
        of the known step counts. Cells that wait for a staged selection count with the share of
        them that will run (waiting_shares: one configuration of k per group)."""
        rate, work_rate, left, counts, unknown = 0.0, 0.0, 0.0, [], []
        waiting = {c.id for c in self.waiting}
        for c in self.cells:
            if c.id in self.done or c.id in self.failed:
                continue
            st = read_status(c.dir) or {}
            if st.get("state") == DROPPED:
                continue
            cost = cell_cost(c.settings)
            if c.id in waiting:  # (a cell the selection has since decided is needed counts whole)
                cost *= self.waiting_share.get(c.id, 1.0)
            steps = _num(st.get("steps"))
            if steps is None:
                steps = _num(c.settings.get("run.steps"))
            if steps is None:
                unknown.append(cost)
            else:
                counts.append(steps)
                left += max(0.0, steps - (_num(st.get("step")) or 0)) * cost
            if c.id in self.running:
                r = _num(st.get("steps_per_s")) or 0.0
                rate += r
                work_rate += r * cell_cost(c.settings)
        if unknown:
            left = left + sum(unknown) * sum(counts) / len(counts) if counts else math.nan
        eta = 0.0 if left == 0 else (left / work_rate if work_rate > 0 else None)
        wait = f" (+{len(waiting)} waiting on the selection)" if waiting else ""
        return (f"cells: {len(self.done)} done, {len(self.running)} running, {len(self.failed)} "
                f"failed, {len(queue)} pending{wait} | {rate:.4g} steps/s | ETA {_fmt_eta(eta)}")

    def run(self) -> int:
        todo = []
        candidates = self.cells
        if self.refill is not None:
            candidates, self.waiting = self.refill()
        for c in candidates:
            if is_done(c.dir):
                self.done.add(c.id)
            else:
                todo.append(c)
        plural = "s" if self.threads != 1 else ""
        later = ""
        if self.refill is not None:
            dropped = len(self.cells) - len(candidates) - len(self.waiting)
            later = (f" ({len(self.waiting)} more wait for the selection on seeds, {dropped} "
                     f"dropped by it)")
        print(f"{PROG}: {len(self.cells)} cells: {len(self.done)} done (skipped), {len(todo)} to "
              f"run{later}, {self.parallel} at a time with {self.threads} thread{plural} each",
              file=self.out)
        queue = collections.deque(todo)
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT,
                                                              signal.SIGHUP, signal.SIGUSR1)}
        last = time.monotonic()
        try:
            while (queue and not self.stopping) or self.running:
                while queue and not self.stopping and len(self.running) < self.parallel:
                    cell = self._next_launchable(queue)
                    if cell is None:
                        break  # every pending cell waits for a sibling's training (below)
                    self._launch(cell)
                finished = [j for j in self.running.values() if j.proc.poll() is not None]
                for job in finished:
                    self._finish(job, queue)
                if finished and self.refill is not None:
                    self._refill(queue)
                if time.monotonic() - last >= self.progress_every:
                    last = time.monotonic()
                    print(self.progress(queue), file=self.out, flush=True)
                if self.running:
                    time.sleep(0.05)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        print(self.progress(queue), file=self.out, flush=True)
        by_id = {c.id: c for c in self.cells}
        for cid, why in self.failed.items():
            print(f"{PROG}: cell {cid} failed: {why} (log: {by_id[cid].dir / 'log.txt'})",
                  file=self.out)
        if self.stopping:
            left = len(self.cells) - len(self.done) - len(self.failed)
            print(f"{PROG}: interrupted; {left} cells not done; run again to resume them",
                  file=self.out)
            return EXIT_INTERRUPTED
        if self.waiting:
            print(f"{PROG}: {len(self.waiting)} cells still wait for the selection on seeds (a "
                  f"selection-seed cell of theirs did not finish)", file=self.out)
        if self.failed or self.busy or self.waiting:
            return 1
        return 0


def training_key(cell: Cell) -> tuple:
    """What a cell trains: its model.* and run.* settings (the run identity that
    icl::train::load_model checks, run.adopt_siblings itself left out). Cells with equal keys train
    the same model bit for bit."""
    return tuple(sorted((k, repr(v)) for k, v in cell.settings.items()
                        if (k.startswith("model.") or k.startswith("run."))
                        and k != "run.adopt_siblings"))


def parallel_threads(P, T, cores):
    """-P and -T: both given, as given; one given, the other fills the cores (at least 1); neither,
    one thread per cell and one cell per core."""
    cores = max(1, cores or 1)
    if P is None and T is None:
        return cores, 1
    if P is None:
        return max(1, cores // T), T
    if T is None:
        return P, max(1, cores // P)
    return P, T


def _has_settings(c: Cell, settings) -> bool:
    """Whether the cell has every KEY=VALUE of --first/--only (true is not 1)."""
    return all(k in c.settings and c.settings[k] == v and
               isinstance(c.settings[k], bool) == isinstance(v, bool) for k, v in settings)


def only_cells(cells: list, only, what="--only") -> list:
    """The cells with every setting of `only` (--only KEY=VALUE, repeatable), all cells when it is
    empty; a setting that no cell has is refused, naming it (a typo would otherwise run nothing)."""
    if not only:
        return list(cells)
    kept = [c for c in cells if _has_settings(c, only)]
    if cells and not kept:
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in only)
        raise SweepError(f"{what} {shown}: no cell of the sweep has "
                         f"{'this setting' if len(only) == 1 else 'all of these settings'}")
    return kept


def run_order(cells: list, order: str, first=()) -> list:
    """The order in which `run` and `slurm` start the pending cells: `cells` (the cell order, §1) or
    `seeds` (every cell of the first seed in cell order, then of the next seed, ...: a sweep
    interrupted early has each configuration once rather than a few configurations thrice)."""
    if order == "seeds":
        cells = sorted(cells, key=lambda c: c.settings.get("run.seed", 0))  # stable: cell order within
    if first:  # --first: the cells with every given setting before the rest, each part in order
        def matches(c):
            return _has_settings(c, first)
        if cells and not any(matches(c) for c in cells):
            shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in first)
            raise SweepError(f"--first {shown}: no cell of the sweep has "
                             f"{'this setting' if len(first) == 1 else 'all of these settings'}")
        cells = sorted(cells, key=lambda c: not matches(c))
    return list(cells)


def cmd_run(args, sweep: Sweep, cells: list) -> int:
    runner = resolve_runner(args.runner)
    prepare(sweep, cells)
    every = run_order(cells, args.order, args.first)
    cells = only_cells(every, args.only)  # --only: a slice of the sweep (the others left alone)
    keep = {c.id for c in cells}
    P, T = parallel_threads(args.P, args.T, os.cpu_count())
    refill = None
    if staged(sweep):
        def refill():
            # the selection is over every cell of the sweep, whatever --only runs of it
            needed, waiting, dropped = stage_plan(sweep, every)  # keeps the run order
            mark_dropped(sweep, needed, dropped)
            needed = [c for c in needed if c.id in keep]
            waiting = [c for c in waiting if c.id in keep]
            ex.waiting_share = waiting_shares(sweep, waiting)
            return needed, waiting
    ex = LocalExecutor(cells, runner, P, T, args.retries, args.progress_every, refill=refill)
    return ex.run()


# ---------------------------------------------------------------------------------------------
# slurm (tools/icl_sweep_slurm.py, imported only here)


def cmd_slurm(args, sweep: Sweep, cells: list) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import icl_sweep_slurm
    except ModuleNotFoundError as e:
        if e.name != "icl_sweep_slurm":
            raise
        raise SweepError(f"slurm: the SLURM executor is not available: "
                         f"{Path(__file__).resolve().parent / 'icl_sweep_slurm.py'} does not exist "
                         f"in this checkout ('run' executes the cells on this machine)") from None
    runner = resolve_runner(args.runner, must_exist=not args.dry_run)
    prepare(sweep, cells)
    waiting = []
    keep = {c.id for c in only_cells(cells, args.only)}
    if staged(sweep):
        needed, waiting, dropped = stage_plan(sweep, cells)  # the selection sees every cell
        if not args.dry_run:
            mark_dropped(sweep, needed, dropped)
        cells = needed
        waiting = [c for c in waiting if c.id in keep]
    cells = [c for c in cells if c.id in keep]
    pending = [c for c in run_order(cells, args.order, args.first) if not is_done(c.dir)]
    root = Path(args.root).absolute()
    if waiting:
        print(f"{PROG}: {len(waiting)} cells wait for the selection on seeds "
              f"{sweep.select['seeds']}: run '{PROG} slurm' again once this array is done")
    if not pending:
        print(f"{PROG}: all {len(cells)} cells{' to run now' if waiting else ''} are done; "
              f"nothing to submit")
        return 0
    job = icl_sweep_slurm.submit(sweep, root, pending, runner, dict(sweep.resources),
                                 bool(args.dry_run), args.P)
    if job:
        print(f"{PROG}: submitted job array {job} over {len(pending)} cells "
              f"(status: squeue -j {job}; then '{PROG} status' and '{PROG} gather')")
    return 0


# ---------------------------------------------------------------------------------------------
# status


def cmd_status(args, sweep: Sweep, cells: list) -> int:
    rows = [["cell", "state", "step", "loss"] + grid_header(sweep)]
    states = []
    later = {}  # staged selection: pending cells that wait for it or that it dropped
    if staged(sweep):
        needed, waiting, dropped = stage_plan(sweep, cells)
        later = {c.id: "waiting" for c in waiting} | {c.id: DROPPED for c in dropped}
    for c in cells:
        st = read_status(c.dir) or {}
        state = cell_state(c.dir)
        if state == "pending" and c.id in later:
            state = later[c.id]
        states.append(state)
        step, steps, loss = st.get("step"), st.get("steps"), _num(st.get("loss"))
        prog = "-"
        if st:
            prog = f"{'-' if step is None else step}/{'-' if steps is None else steps}"
        rows.append([c.id, state, prog, f"{loss:.6g}" if loss is not None else "-"] + grid_cells(c))
    print_table(rows)
    print(f"{len(cells)} cells: {state_counts(states)}")
    return 0


# ---------------------------------------------------------------------------------------------
# gather


def read_metrics(cell: Cell) -> list:
    path = cell.dir / "metrics.csv"
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise SweepError(f"cell {cell.id}: cannot read {path}: {e.strerror}") from None
    if not rows or rows[0] != METRICS_HEADER:
        raise SweepError(f"cell {cell.id}: {path}: the header must be {','.join(METRICS_HEADER)}, "
                         f"got {','.join(rows[0]) if rows else 'an empty file'}")
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(METRICS_HEADER):
            raise SweepError(f"cell {cell.id}: {path} line {i}: {len(r)} fields, expected "
                             f"{len(METRICS_HEADER)}")
    return rows[1:]


def select_cells(sweep: Sweep, cells: list, metrics: dict) -> set:
    """The ids of the selected cells. For each value tuple of select.x, among the combinations of
    the other axis keys (run.seed not one of them) the one with the lowest mean of metric `by` over
    its seeds is selected (all its cells); ties go to the combination met first in cell order; a
    NaN mean loses to any number."""
    if sweep.select is None:
        return {c.id for c in cells}
    x, by = sweep.select["x"], sweep.select["by"]
    others = [k for k in sweep.axis_keys if k not in x]
    groups = {}  # x tuple -> {other tuple -> [cells]} (dicts keep cell order)
    for c in cells:
        xv = tuple(json.dumps(c.settings[k]) for k in x)
        ov = tuple(json.dumps(c.settings[k]) for k in others)
        groups.setdefault(xv, {}).setdefault(ov, []).append(c)
    selected = set()
    for combos in groups.values():
        best, best_mean = None, None
        for members in combos.values():
            vals = []
            for c in members:
                rows = [r for r in metrics[c.id] if r[0] == by]
                if len(rows) != 1:
                    raise SweepError(f"cell {c.id}: metrics.csv has {len(rows)} rows with metric "
                                     f"{by!r}; [select] by = {by!r} needs exactly one")
                try:
                    vals.append(float(rows[0][5]))
                except ValueError:
                    raise SweepError(f"cell {c.id}: metrics.csv: the {by!r} value {rows[0][5]!r} "
                                     f"is not a number") from None
            mean = math.fsum(vals) / len(vals)
            key = math.inf if math.isnan(mean) else mean
            if best is None or key < best_mean:
                best, best_mean = members, key
        selected.update(c.id for c in best)
    return selected


def _combo(sweep: Sweep, c: Cell) -> tuple:
    """A cell's configuration: its values of every axis and zip key (its seed left out)."""
    return tuple(json.dumps(c.settings[k]) for k in sweep.axis_keys)


def _chosen_combos(sweep: Sweep, cells: list, metrics: dict) -> set:
    """The configurations (_combo) that select_cells chooses among `cells`."""
    chosen = select_cells(sweep, cells, metrics)
    return {_combo(sweep, c) for c in cells if c.id in chosen}


def staged(sweep: Sweep) -> bool:
    """Whether the sweep selects on some seeds first ([select] seeds = [...])."""
    return sweep.select is not None and sweep.select.get("seeds") is not None


def stage_plan(sweep: Sweep, cells: list):
    """With [select] seeds (staged selection): (needed, waiting, dropped), each in cell order. The
    cells of the selection seeds are needed; for every value tuple of select.x whose
    selection-seed cells are all done, the selection over those cells (select_cells) decides: the
    other seeds' cells of the selected configuration are needed, those of every other
    configuration dropped (never run); where a selection-seed cell is not done yet, the other
    seeds' cells wait. Without it every cell is needed."""
    if not staged(sweep):
        return list(cells), [], []
    first = set(sweep.select["seeds"])
    x = sweep.select["x"]
    groups = {}  # x tuple -> [cells]
    for c in cells:
        groups.setdefault(tuple(json.dumps(c.settings[k]) for k in x), []).append(c)
    fate = {}  # id -> "needed" | "waiting" | "dropped"
    for members in groups.values():
        firsts = [c for c in members if c.settings[SEED_KEY] in first]
        for c in firsts:
            fate[c.id] = "needed"
        rest = [c for c in members if c.settings[SEED_KEY] not in first]
        if firsts and all(is_done(c.dir) for c in firsts):
            combos = _chosen_combos(sweep, firsts, {c.id: read_metrics(c) for c in firsts})
            for c in rest:
                fate[c.id] = "needed" if _combo(sweep, c) in combos else "dropped"
        else:
            for c in rest:
                fate[c.id] = "waiting"
    return tuple([c for c in cells if fate[c.id] == f] for f in ("needed", "waiting", "dropped"))


DROPPED = "dropped"


def mark_dropped(sweep: Sweep, needed: list, dropped: list) -> None:
    """Writes status.json {"state": "dropped"} for each dropped cell that has run nothing (a cell
    with any status of its own is left alone), and clears the mark of a needed cell (a sweep file
    whose selection seeds changed)."""
    for c in dropped:
        if read_status(c.dir) is None and c.dir.is_dir():
            write_atomic(c.dir / "status.json", dump_json(
                {"state": DROPPED, "why": f"not the configuration that [select] chose on seeds "
                 f"{sweep.select['seeds']} for its {', '.join(sweep.select['x']) or 'sweep'}"}))
    for c in needed:
        st = read_status(c.dir)
        if st is not None and st.get("state") == DROPPED:
            (c.dir / "status.json").unlink()


def cmd_gather(args, sweep: Sweep, cells: list) -> int:
    root = Path(args.root).absolute()
    for c in cells:  # a folder must still belong to this sweep
        old = read_json(c.dir / "config.json")
        diffs = _config_differences(old, config_doc(sweep, c)) if old is not None else []
        if diffs:
            raise SweepError(f"cell {c.id}: {c.dir / 'config.json'} differs from the sweep "
                             f"({'; '.join(diffs)})")
    if staged(sweep):
        needed, waiting, dropped = stage_plan(sweep, cells)
        gone = {c.id for c in dropped}
        cells = [c for c in cells if c.id not in gone]
    not_done = [(c, cell_state(c.dir)) for c in cells if not is_done(c.dir)]
    if not_done and not args.partial:
        shown = "; ".join(f"{c.id} {s}" for c, s in not_done[:20])
        more = f"; and {len(not_done) - 20} more" if len(not_done) > 20 else ""
        raise SweepError(f"gather: {len(not_done)} of {len(cells)} cells are not done ({shown}"
                         f"{more}); run them first, or pass --partial to gather the done ones", 1)
    missing = {c.id for c, _ in not_done}
    todo = [c for c in cells if c.id not in missing]
    metrics = {c.id: read_metrics(c) for c in todo}
    if staged(sweep):  # chosen on the selection seeds; the other seeds follow their configuration
        first = set(sweep.select["seeds"])
        combos = _chosen_combos(sweep, [c for c in todo if c.settings[SEED_KEY] in first], metrics)
        selected = {c.id for c in todo if _combo(sweep, c) in combos}
    else:
        selected = select_cells(sweep, todo, metrics)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    keys = sweep.axis_keys
    w.writerow(["cell"] + keys + [SEED_KEY, "selected"] + METRICS_HEADER)
    n = 0
    for c in todo:
        head = [c.id] + [format_value(c.settings[k]) for k in keys] + \
               [format_value(c.settings[SEED_KEY]), "1" if c.id in selected else "0"]
        for r in metrics[c.id]:
            w.writerow(head + r)
            n += 1
    root.mkdir(parents=True, exist_ok=True)
    out = root / "gathered.csv"
    write_atomic(out, buf.getvalue())
    part = f" ({len(missing)} cells not done, left out)" if missing else ""
    print(f"{out}: {n} rows from {len(todo)} cells{part}")
    return 0


# ---------------------------------------------------------------------------------------------
# Command line


def _int_at_least(lo):
    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {s!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"expected an integer >= {lo}, got {v}")
        return v
    return parse


def _setting(s):
    """KEY=VALUE of --first: VALUE as a TOML value (8, 1e-3, true, "x"), else the string itself."""
    key, eq, value = s.partition("=")
    if not eq or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {s!r}")
    try:
        v = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        v = value
    return key, canonical_value(v)


def _seconds(s):
    try:
        v = float(s)
    except ValueError:
        v = -1
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {s!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Plan, run, check and gather an icl sweep "
                                "(docs/sweeps.md).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {"plan": "list the cells, write their config.json, check them with the runner",
             "run": "run the cells that are not done on this machine",
             "slurm": "submit the cells that are not done as a SLURM job array",
             "status": "one line per cell: state, step, loss",
             "gather": "write <root>/gathered.csv over the done cells"}
    for name, h in helps.items():
        s = sub.add_parser(name, help=h, description=h)
        s.add_argument("sweep", help="the sweep file (TOML)")
        s.add_argument("--root", help="the sweep's folder (default: runs/<name>)")
        s.add_argument("--quick", action="store_true", help="apply the sweep's [quick] table")
        if name in ("plan", "run", "slurm"):
            s.add_argument("--runner", help="the cell runner (default: $ICL_CELL, else "
                           f"{DEFAULT_RUNNER} in the repository)")
        if name == "plan":
            s.add_argument("--no-check", action="store_true",
                           help="do not ask the runner to check the cells")
        if name in ("run", "slurm"):
            s.add_argument("-P", type=_int_at_least(1), default=None, metavar="N",
                           help="cells at a time (slurm: the array's %%K)")
            s.add_argument("--order", choices=("cells", "seeds"), default="cells",
                           help="start the cells in cell order (default) or seed by seed: every "
                           "cell of the first seed, then the next seed's")
            s.add_argument("--first", action="append", default=[], type=_setting,
                           metavar="KEY=VALUE", help="start the cells with this setting before the "
                           "others (repeatable: cells with all of them; the order within each "
                           "part as --order says)")
            s.add_argument("--only", action="append", default=[], type=_setting,
                           metavar="KEY=VALUE", help="run only the cells with this setting "
                           "(repeatable: cells with all of them); the others are left as they are "
                           "(a staged selection still chooses over every cell)")
        if name == "run":
            s.add_argument("-T", type=_int_at_least(1), default=None, metavar="N",
                           help="threads per cell (default: P·T fills the cores)")
            s.add_argument("--retries", type=_int_at_least(0), default=2, metavar="K",
                           help="reruns of a cell that fails (default 2; exit 2 is never retried)")
            s.add_argument("--progress-every", type=_seconds, default=5.0, metavar="S",
                           help="seconds between progress lines (default 5)")
        if name == "slurm":
            s.add_argument("--dry-run", action="store_true",
                           help="print the script, submit nothing")
        if name == "gather":
            s.add_argument("--partial", action="store_true",
                           help="gather the done cells even when some are not done")
    return p


COMMANDS = {"plan": cmd_plan, "run": cmd_run, "slurm": cmd_slurm, "status": cmd_status,
            "gather": cmd_gather}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        sweep = load_sweep(args.sweep, quick=args.quick)
        if args.root is None:
            args.root = str(Path("runs") / sweep.name)
        cells = expand(sweep, args.root)
        return COMMANDS[args.command](args, sweep, cells)
    except SweepError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return e.status
    except BrokenPipeError:  # `icl_sweep.py status ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.modules.setdefault("icl_sweep", sys.modules["__main__"])  # one module for icl_sweep_slurm
    sys.exit(main())

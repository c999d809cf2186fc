#!/usr/bin/env python3
"""safetensors interoperability: icl writes a file that numpy reads, numpy writes one that icl reads.

The reader and writer here follow the published safetensors format (8-byte little-endian header
length, JSON header, raw little-endian C-order data) with numpy only: Debian has no `safetensors`
package. Values are compared bit for bit."""
import argparse, json, os, shutil, struct, subprocess, sys
import numpy as np

from safetensors_np import read, write  # shared with the other tests


def run(exe, tag, d):
    r = subprocess.run([exe, tag], env=dict(os.environ, ICL_PY_DIR=d))
    if r.returncode != 0:
        sys.exit(f"FAIL: {exe} {tag} exited with {r.returncode}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.dir, ignore_errors=True)
    os.makedirs(a.dir)

    run(a.exe, "[py-io-write]", a.dir)
    t, meta = read(os.path.join(a.dir, "from_cpp.safetensors"))
    fails = []
    if meta.get("written_by") != "icl":
        fails.append(f"metadata {meta}")
    exp_a = 0.25 * np.arange(12, dtype=np.float64).reshape(3, 4) - 1.0
    if t["a"].dtype != np.float64 or t["a"].shape != (3, 4) or not np.array_equal(t["a"], exp_a):
        fails.append(f"a = {t['a']}")
    exp_b = np.array([[1.5, -2.25, 3.0e-8], [1e30, -0.0, 7.0]], dtype=np.float32)
    if t["b"].dtype != np.float32 or not np.array_equal(t["b"], exp_b) or not np.signbit(t["b"][1, 1]):
        fails.append(f"b = {t['b']}")
    if t["v"].shape != (3,) or not np.array_equal(t["v"], np.array([0.1, 0.2, 0.3])):
        fails.append(f"v = {t['v']!r}")
    if t["s"].shape != () or t["s"] != -4.5:
        fails.append(f"s = {t['s']!r}")
    if fails:
        sys.exit("FAIL: values read by numpy differ: " + "; ".join(fails))

    v = t["v"]
    write(os.path.join(a.dir, "from_python.safetensors"), {
        "a2": 2 * t["a"] + 1,
        "v_sum": np.array([v[0] + v[1], v[1] + v[2], v[2] + v[0]]),
        "cube": (100 * np.arange(2)[:, None, None] + 10 * np.arange(3)[None, :, None]
                 + np.arange(4)[None, None, :]).astype(np.float32),
    }, {"written_by": "numpy"})
    run(a.exe, "[py-io-read]", a.dir)
    print("safetensors interop with numpy: OK")


if __name__ == "__main__":
    main()

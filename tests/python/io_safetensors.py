#!/usr/bin/env python3
"""safetensors interoperability: icl writes a file that numpy reads, numpy writes one that icl reads.

The reader and writer here follow the published safetensors format (8-byte little-endian header
length, JSON header, raw little-endian C-order data) with numpy only: Debian has no `safetensors`
package. Values are compared bit for bit.

Checksums (docs/io.md "Checksums"): icl's per-tensor CRC-32 must verify in python/icl_torch.py
(zlib.crc32), a flipped data byte must be refused there naming the tensor, and the numpy writer's
checksums must verify in C++ ([py-io-read] checks that the file carries them)."""
import argparse, json, os, shutil, struct, subprocess, sys
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import icl_torch  # noqa: E402

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

    # icl_torch's reader verifies icl's checksums (computed by the C++ table-driven CRC-32) ...
    src = os.path.join(a.dir, "from_cpp.safetensors")
    t2, meta2 = icl_torch.read_safetensors(src)
    if any(k.startswith("icl.crc32.") for k in meta2) or not np.array_equal(t2["a"], exp_a):
        sys.exit(f"FAIL: icl_torch.read_safetensors: metadata {meta2} (checksums must be removed) or values differ")
    if sorted(k for k in meta if k.startswith("icl.crc32.")) != [f"icl.crc32.{k}" for k in sorted(t)]:
        sys.exit(f"FAIL: icl did not write a checksum per tensor: {sorted(meta)}")
    # ... and refuses a flipped byte in any tensor, naming it
    raw = open(src, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    for name in ("a", "b", "v", "s"):
        b0, _ = header[name]["data_offsets"]
        bad = bytearray(raw)
        bad[8 + n + b0] ^= 0x01
        path = os.path.join(a.dir, "flipped.safetensors")
        open(path, "wb").write(bytes(bad))
        try:
            icl_torch.read_safetensors(path)
            sys.exit(f"FAIL: a flipped byte in tensor '{name}' loaded silently")
        except icl_torch.IoError as e:
            if f"tensor '{name}': checksum mismatch" not in str(e):
                sys.exit(f"FAIL: flipped byte in '{name}': unexpected message: {e}")

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

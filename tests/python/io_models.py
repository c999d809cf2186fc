#!/usr/bin/env python3
"""The reference PyTorch runner (python/icl_torch.py) against icl's C++ predictions.

[py-models-write] writes every model kind icl saves -- trained pre-LN, trained paper (with and without
the query token), constructed (the online SGD chain, Theorem 1, Theorem 2) -- in float and double,
plus prompts and the C++ predictions. For each, this script copies only the model file into a fresh
folder, loads it with icl_torch.load and compares the predictions:

* double: |torch - C++| <= 1e-9. Both run the same float64 operations in a different summation
  order; measured: 2.2e-16 for the trained models, 2.7e-12 to 5.0e-12 for the constructed ones (their
  rounding is amplified by the realisation constants, LayerNorm pads P = M = 1e10 and scores scaled by
  gamma * Ts^2), so 1e-9 leaves a factor 200 while still catching any wrong weight, layout or formula
  (those change predictions at O(1e-3) or more).
* float: |torch - C++| <= 1e-5 * max |C++ prediction| (float's rounding, eps = 6e-8, amplified the
  same way). Measured: 1.2e-7 to 2.4e-7 for the trained models (tolerance 1.4e-5 to 1.8e-5), 5.7e-6 to
  9.5e-6 for the constructed ones (tolerance 1.2e-5 to 3.8e-5): the float constructions sit within a
  factor 1.6 to 4 of the bound.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import icl_torch  # noqa: E402

CASES = ["preln", "paper", "paper_noquery", "sgd", "theorem1", "theorem2"]


def check(d, name, dt):
    io, _ = icl_torch.read_safetensors(os.path.join(d, f"{name}_{dt}.io.safetensors"))
    with tempfile.TemporaryDirectory() as fresh:  # nothing but the model file
        path = os.path.join(fresh, "model.safetensors")
        shutil.copy(os.path.join(d, f"{name}_{dt}.safetensors"), path)
        model = icl_torch.load(path)
        tdt = torch.float32 if dt == "f32" else torch.float64
        with torch.no_grad():
            out = model(torch.tensor(np.array(io["tokens"]), dtype=tdt)).double().numpy()
    want = np.array(io["predictions"])
    if out.shape != want.shape:
        return f"{name} {dt}: shape {out.shape}, C++ {want.shape}"
    diff = float(np.max(np.abs(out - want)))
    tol = 1e-9 if dt == "f64" else 1e-5 * float(np.max(np.abs(want)))
    print(f"{name:14s} {dt}: shape {out.shape}, max |torch - C++| = {diff:.3e} (tolerance {tol:.1e})")
    return None if diff <= tol else f"{name} {dt}: max difference {diff:.3e} > {tol:.1e}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    torch.set_num_threads(1)
    r = subprocess.run([a.exe, "[py-models-write]"], env=dict(os.environ, ICL_PY_DIR=a.dir))
    if r.returncode != 0:
        sys.exit(f"io_models.py: {a.exe} [py-models-write] failed with exit code {r.returncode}")
    errors = [e for name in CASES for dt in ("f64", "f32") if (e := check(a.dir, name, dt))]
    if errors:
        sys.exit("io_models.py: icl_torch disagrees with C++:\n  " + "\n  ".join(errors))
    print("io_models.py: icl_torch reproduces the C++ predictions of every model kind from the file alone")


if __name__ == "__main__":
    main()

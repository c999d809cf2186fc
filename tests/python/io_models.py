#!/usr/bin/env python3
"""The reference PyTorch runner (python/icl_torch.py) against icl's C++ predictions.

[py-models-write] writes every model kind icl saves -- trained pre-LN, trained paper (with and without
the query token), constructed (the online SGD chain, Theorem 1, Theorem 2) -- in float and double,
plus prompts and the C++ predictions. For each, this script copies only the model file into a fresh
folder, loads it with icl_torch.load and compares the predictions:

The tolerances are derived from the computation on each input, never from one machine's run
(issue 19 §1; a float bound measured on the reference BLAS failed under OpenBLAS, 2.2e-5 > 1.2e-5):

* S, the rounding scale of the case: tests/python/rounding.py runs the file's model in float64 on
  the same tokens, perturbing every rounding operation as a rounding of unit roundoff u would
  (u = 2^-24 for a float model, 2^-53 for a double one), and takes the largest deviation over 8 draws
  and every prediction. It depends on the weights and tokens only, not on the BLAS.
* float: the float model's weights and tokens are exact in double, so its float64 run is the exact
  answer (to 2^-53/2^-24 = 2^-29 relative) of the function both sides compute in float. Each side is
  compared with it: |torch - ref| <= C S and |C++ - ref| <= C S, which also says which side is off.
* double: no higher precision is at hand, so the two sides are compared with each other:
  |torch - C++| <= 2 C S (each side within C S of the exact answer).
* C = 2: S is the largest deviation of 8 draws x every prediction (24 to 144 samples) of a model
  that bounds each rounding by u and each summation's partial sums by the sum of |terms|; a real
  run's largest error is one draw over the same predictions. Were the real errors distributed like
  the simulated ones, exceeding twice the largest of >= 24 simulated samples would be a > 5 sigma
  event; in fact the model is conservative: measured on the reference BLAS and on OpenBLAS, each
  side's error is 0.01 S to 0.34 S (docs/io.md). A wrong weight, layout or formula moves predictions
  by O(1e-3) or more: above 2 S in float (4e-7 to 1e-6 for the trained models, 1.3e-4 to 3.6e-4 for
  the constructed ones, printed per case), and in double the comparison is at 1e-14 to 1e-9.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import copy
import json
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import icl_torch  # noqa: E402
from rounding import UNIT_ROUNDOFF, rounding_scale  # noqa: E402

C = 2  # see the docstring

CASES = ["preln", "paper", "paper_noquery", "sgd", "theorem1", "theorem2"]


def check(d, name, dt):
    io, _ = icl_torch.read_safetensors(os.path.join(d, f"{name}_{dt}.io.safetensors"))
    with tempfile.TemporaryDirectory() as fresh:  # nothing but the model file
        path = os.path.join(fresh, "model.safetensors")
        shutil.copy(os.path.join(d, f"{name}_{dt}.safetensors"), path)
        model = icl_torch.load(path)
    tdt = torch.float32 if dt == "f32" else torch.float64
    tokens = torch.tensor(np.array(io["tokens"]), dtype=tdt)
    with torch.no_grad():
        out = model(tokens).double().numpy()
    # the same weights and tokens in float64 (exact copies of the float ones), with and without
    # simulated rounding of the model's precision
    model64 = copy.deepcopy(model).double()
    scale, ref = rounding_scale(lambda: model64(tokens.double()), UNIT_ROUNDOFF[tdt])
    ref = ref.numpy()
    want = np.array(io["predictions"])
    if out.shape != want.shape:
        return f"{name} {dt}: shape {out.shape}, C++ {want.shape}"
    diff = float(np.max(np.abs(out - want)))
    if dt == "f64":
        tol = 2 * C * scale
        print(f"{name:14s} {dt}: shape {out.shape}, rounding scale S = {scale:.2e}, "
              f"|torch - C++| = {diff:.3e} = {diff / scale:.2f} S (tolerance {tol:.1e})")
        return None if diff <= tol else f"{name} {dt}: |torch - C++| = {diff:.3e} > 2 C S = {tol:.1e}"
    tol = C * scale
    e_torch, e_cpp = float(np.max(np.abs(out - ref))), float(np.max(np.abs(want - ref)))
    print(f"{name:14s} {dt}: shape {out.shape}, rounding scale S = {scale:.2e}, |torch - ref| = {e_torch:.3e} "
          f"= {e_torch / scale:.2f} S, |C++ - ref| = {e_cpp:.3e} = {e_cpp / scale:.2f} S, "
          f"|torch - C++| = {diff:.3e} (tolerance C S = {tol:.1e})")
    errors = [f"{name} {dt}: |{who} - float64 reference| = {e:.3e} > C S = {tol:.1e}"
              for who, e in (("torch", e_torch), ("C++", e_cpp)) if e > tol]
    return "; ".join(errors) or None


def expect_error(what, fn, kind, fragment):
    """None if fn() raises `kind` with `fragment` in its message, else a description of what happened."""
    try:
        fn()
    except kind as e:
        return None if fragment in str(e) else f"{what}: message {str(e)!r} lacks {fragment!r}"
    except Exception as e:  # noqa: BLE001 -- any other error is the finding
        return f"{what}: {type(e).__name__}: {e} (expected {kind.__name__} mentioning {fragment!r})"
    return f"{what}: accepted silently (expected {kind.__name__} mentioning {fragment!r})"


def bad_inputs(d):
    """icl_torch refuses what the C++ loader and predict refuse, with their messages (issue 19 §2)."""
    sys.path.insert(0, HERE)
    from safetensors_np import read as np_read, write as np_write
    errors = []
    src = os.path.join(d, "preln_f32.safetensors")
    raw = open(src, "rb").read()
    io, _ = icl_torch.read_safetensors(os.path.join(d, "preln_f32.io.safetensors"))
    tok32 = torch.tensor(np.array(io["tokens"]), dtype=torch.float32)
    with tempfile.TemporaryDirectory() as tmp:
        def variant(name, data):
            path = os.path.join(tmp, name)
            with open(path, "wb") as f:
                f.write(data)
            return path
        # a truncated file: numpy's "cannot reshape array of size 7 into shape (1,32)" before
        errors.append(expect_error("truncated file", lambda: icl_torch.load(variant("t.safetensors", raw[:-7])),
                                   icl_torch.IoError, "truncated or corrupt: tensor"))
        # a flipped byte in a weight: loaded silently before (predictions moved)
        (n,) = struct.unpack("<Q", raw[:8])
        hdr = json.loads(raw[8:8 + n])
        b0 = hdr["read_out.weight"]["data_offsets"][0]
        flipped = bytearray(raw)
        flipped[8 + n + b0 + 2] ^= 0x10
        errors.append(expect_error("flipped byte", lambda: icl_torch.load(variant("f.safetensors", bytes(flipped))),
                                   icl_torch.IoError, "tensor 'read_out.weight': checksum mismatch"))
        model = icl_torch.load(src)
        nan_tok = tok32.clone()
        nan_tok[0, 1, 0] = float("nan")
        errors.append(expect_error("NaN tokens", lambda: model(nan_tok), ValueError,
                                   "tokens: expected finite values, found NaN or Inf"))
        errors.append(expect_error("float64 tokens into a float32 model", lambda: model(tok32.double()), ValueError,
                                   "dtype torch.float64, but the model runs in torch.float32"))
        errors.append(expect_error("token width", lambda: model(tok32[..., :3]), ValueError,
                                   "tokens: expected a tensor (B, T, d+1 = 4)"))
        # weights rewritten (with fresh checksums, so only the loader's own checks can catch them)
        params, meta = np_read(src)
        meta = {k: v for k, v in meta.items() if not k.startswith("icl.crc32.")}

        def rewritten(name, change, meta_change=None):
            p = {k: np.array(v) for k, v in params.items()}
            change(p)
            m = dict(meta)
            if meta_change:
                meta_change(m)
            path = os.path.join(tmp, name)
            np_write(path, p, m)
            return path
        errors.append(expect_error("NaN weight", lambda: icl_torch.load(rewritten(
            "nan.safetensors", lambda p: p["blocks.0.linear1.weight"].__setitem__((0, 0), np.nan))),
            icl_torch.IoError, "parameter 'blocks.0.linear1.weight' has NaN or Inf values"))

        def reshape(p):
            p["read_out.weight"] = np.zeros((2, p["read_out.weight"].shape[1]), dtype=np.float32)
        errors.append(expect_error("wrong shape", lambda: icl_torch.load(rewritten("shape.safetensors", reshape)),
                                   icl_torch.IoError,
                                   "parameter 'read_out.weight' has shape [2, 8] in the file, but the architecture "
                                   "metadata implies [1, 8]"))
        errors.append(expect_error("no format_version", lambda: icl_torch.load(rewritten(
            "nover.safetensors", lambda p: None, lambda m: m.pop("format_version"))),
            icl_torch.IoError, "no 'format_version' metadata"))
        errors.append(expect_error("too many tokens", lambda: model(torch.zeros(1, 13, 4)), ValueError,
                                   "need a model built for max_tokens >= 13"))
    errors = [e for e in errors if e]
    print(f"icl_torch bad input: {10 - len(errors)}/10 refused with the C++ loader's messages")
    return errors


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
    errors += bad_inputs(a.dir)
    if errors:
        sys.exit("io_models.py: icl_torch disagrees with C++:\n  " + "\n  ".join(errors))
    print("io_models.py: icl_torch reproduces the C++ predictions of every model kind from the file alone")


if __name__ == "__main__":
    main()

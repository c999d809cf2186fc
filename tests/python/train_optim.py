#!/usr/bin/env python3
"""Differential test: icl::train::Adam / AdamW + clip_grad_norm + warmup-cosine schedule against
torch.optim.Adam / AdamW + torch.nn.utils.clip_grad_norm_ + LambdaLR on the same gradients.

The script writes the initial parameters and 10 steps of gradients (optim_in.safetensors), runs
icl ([py-train-optim-run] writes optim_icl.safetensors), runs torch (optim_torch.safetensors) and
lets icl compare ([py-train-optim-check]). The configurations mirror test_optim_python.cpp.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys

import numpy as np
import torch

STEPS = 10
WARMUP = 3
MAX_NORM = 1.0
CASES = {
    "adam": dict(cls=torch.optim.Adam, weight_decay=0.01, amsgrad=False),
    "adamw": dict(cls=torch.optim.AdamW, weight_decay=0.1, amsgrad=False),
    "adam_ams": dict(cls=torch.optim.Adam, weight_decay=0.01, amsgrad=True),
}
LR, BETAS, EPS = 0.05, (0.9, 0.98), 1e-9


from safetensors_np import write as st_write  # shared with the other tests


def lr_lambda(t):  # transformers.get_cosine_schedule_with_warmup, num_cycles = 0.5
    if t < WARMUP:
        return t / max(1, WARMUP)
    progress = (t - WARMUP) / max(1, STEPS - WARMUP)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))


def run_torch(inp, case, dtype):
    cfg = CASES[case]
    w = torch.tensor(inp["w0"], dtype=dtype, requires_grad=True)
    b = torch.tensor(inp["b0"], dtype=dtype, requires_grad=True)
    opt = cfg["cls"]([w, b], lr=LR, betas=BETAS, eps=EPS, weight_decay=cfg["weight_decay"], amsgrad=cfg["amsgrad"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    pre = ("f32." if dtype == torch.float32 else "f64.") + case + "."
    out = {}
    for t in range(STEPS):
        w.grad = torch.tensor(inp[f"grad.w.{t}"], dtype=dtype)
        b.grad = torch.tensor(inp[f"grad.b.{t}"], dtype=dtype)
        norm = torch.nn.utils.clip_grad_norm_([w, b], MAX_NORM)
        out[pre + f"norm.{t}"] = np.array(float(norm), dtype=np.float64)
        out[pre + f"lr.{t}"] = np.array(opt.param_groups[0]["lr"], dtype=np.float64)
        opt.step()
        sched.step()
    npdt = np.float32 if dtype == torch.float32 else np.float64
    out[pre + "w"] = w.detach().numpy().astype(npdt)
    out[pre + "b"] = b.detach().numpy().astype(npdt)
    for name, p in (("w", w), ("b", b)):
        st = opt.state[p]
        keys = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if cfg["amsgrad"] else [])
        for k in keys:
            a = st[k].numpy().astype(npdt)
            out[pre + f"optim.{name}.{k}"] = a if a.ndim == 2 else a.reshape(-1)
    return out


def run_exe(exe, tag, d):
    env = dict(os.environ, ICL_PY_DIR=d)
    r = subprocess.run([exe, tag], env=env)
    if r.returncode != 0:
        sys.exit(f"train_optim.py: {exe} {tag} failed with exit code {r.returncode}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    rng = np.random.default_rng(1234)
    inp = {"w0": rng.standard_normal((3, 4)), "b0": rng.standard_normal(4)}
    for t in range(STEPS):
        scale = 0.2 if t % 3 == 0 else 1.5  # some steps below, some above MAX_NORM
        inp[f"grad.w.{t}"] = scale * rng.standard_normal((3, 4))
        inp[f"grad.b.{t}"] = scale * rng.standard_normal(4)
    # the float runs start from the float-rounded values on both sides
    st_write(os.path.join(a.dir, "optim_in.safetensors"), inp)
    run_exe(a.exe, "[py-train-optim-run]", a.dir)
    out = {}
    for case in CASES:
        for dt in (torch.float32, torch.float64):
            out.update(run_torch(inp, case, dt))
    st_write(os.path.join(a.dir, "optim_torch.safetensors"), out)
    run_exe(a.exe, "[py-train-optim-check]", a.dir)
    print("train_optim.py: icl's Adam/AdamW/clipping/schedule agree with torch.optim")


if __name__ == "__main__":
    main()

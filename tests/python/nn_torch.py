#!/usr/bin/env python3
"""Differential test: icl::nn models against PyTorch.

[py-nn-write] exports, for the pre-LN model and the paper model in float and double, the weights
(PyTorch state_dict names and layouts, docs/nn.md) and a batch of ICL prompts. This script builds
the same models in PyTorch (nn.TransformerEncoderLayer(norm_first=True, gelu, dropout=0) with a
causal mask; the paper block by hand), computes the per-token outputs, the paper's Eq. 8 loss and
every parameter gradient, and also exports a torch-initialised model with its outputs.
[py-nn-check] then compares each quantity q (outputs, loss, every gradient) in the relative 2-norm,
|icl - torch| / |torch| <= tol.q, with tolerances derived from the computation (issue 19 §1), not
from one BLAS's run: tests/python/rounding.py runs the same model, inputs and loss in float64 with
every rounding operation of the forward and backward pass perturbed as a rounding of the case's
precision would (u = 2^-24 float, 2^-53 double), 8 draws; S_q is the largest relative deviation.
Each side's error is taken to be within C S_q of the exact result (C = 2, derived in
tests/python/io_models.py: a real run beyond twice the largest of the simulated draws), so
tol.q = 2 C S_q. In float, where the float weights
and inputs are exact in double, torch's own error is checked here against the float64 run:
|torch - ref| <= C S_q, which tests the rounding model on this BLAS.
"""
import copy
import argparse
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch
from torch import nn
import torch.nn.functional as Fn


from safetensors_np import read as st_read, write as st_write  # shared with the other tests
from rounding import UNIT_ROUNDOFF, rounding_scales

C = 2  # see the docstring


def causal_mask(T, dtype):
    return torch.triu(torch.full((T, T), float("-inf"), dtype=dtype), diagonal=1)


class PaperAttention(nn.Module):
    """The paper's attention: M heads with full-width H x H query/key/value maps (no biases), the
    heads concatenated and mixed by W^F (out_proj, H x M*H, with bias); softmax of scale*q.k."""

    def __init__(self, H, M, scale=1.0):
        super().__init__()
        self.H, self.M, self.scale = H, M, scale
        self.in_proj_weight = nn.Parameter(torch.empty(3 * M * H, H))
        nn.init.xavier_uniform_(self.in_proj_weight)
        self.out_proj = nn.Linear(M * H, H)

    def forward(self, h):  # B x T x H
        B, T, H = h.shape
        M = self.M
        qkv = h @ self.in_proj_weight.t()  # B x T x 3MH
        q, k, v = qkv.split(M * H, dim=-1)
        q = q.reshape(B, T, M, H).transpose(1, 2)  # B x M x T x H
        k = k.reshape(B, T, M, H).transpose(1, 2)
        v = v.reshape(B, T, M, H).transpose(1, 2)
        s = self.scale * (q @ k.transpose(-1, -2)) + causal_mask(T, h.dtype)  # query x key
        o = torch.softmax(s, dim=-1) @ v  # B x M x T x H
        return self.out_proj(o.transpose(1, 2).reshape(B, T, M * H))


class PaperBlock(nn.Module):
    """x = h + attn(h); h' = x + linear2(gelu(linear1(LN(x)))), LN without gain/bias, eps = 0."""

    def __init__(self, H, M, F):
        super().__init__()
        self.self_attn = PaperAttention(H, M)
        self.linear1 = nn.Linear(H, F)
        self.linear2 = nn.Linear(F, H)
        self.H = H

    def forward(self, h, src_mask=None):
        x = h + self.self_attn(h)
        z = Fn.layer_norm(x, (self.H,), eps=0.0)
        return x + self.linear2(Fn.gelu(self.linear1(z)))


class Model(nn.Module):
    def __init__(self, kind, D, H, M, F, TMax, L):
        super().__init__()
        self.read_in = nn.Linear(D + 1, H)
        self.pos_embedding = nn.Embedding(TMax, H)
        if kind == "preln":
            self.blocks = nn.ModuleList([
                nn.TransformerEncoderLayer(H, M, F, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True) for _ in range(L)])
            self.norm_f = nn.LayerNorm(H)
        else:
            self.blocks = nn.ModuleList([PaperBlock(H, M, F) for _ in range(L)])
            self.norm_f = None
        self.read_out = nn.Linear(H, 1)

    def forward(self, tok):  # B x T x (D+1) -> B x T
        T = tok.shape[1]
        h = self.read_in(tok) + self.pos_embedding.weight[:T]
        mask = causal_mask(T, tok.dtype)
        for blk in self.blocks:
            h = blk(h, src_mask=mask)
        if self.norm_f is not None:
            h = self.norm_f(h)
        return self.read_out(h)[..., 0]


def run_case(d, kind, dt):
    inp, meta = st_read(os.path.join(d, f"nn_{kind}_{dt}_in.safetensors"))
    D, H, M, F, TMax, L, n, B = (int(meta[k]) for k in ("D", "H", "M", "F", "TMax", "L", "n", "B"))
    T = 2 * n - 1
    tdt = torch.float32 if dt == "f32" else torch.float64
    npdt = np.float32 if dt == "f32" else np.float64
    model = Model(kind, D, H, M, F, TMax, L).to(tdt)
    model.train()  # dropout is 0; the train path is the plain (non-fused) one
    names = [k for k, _ in model.named_parameters()]
    missing = set(names) ^ set(k for k in inp if k not in ("inputs", "targets"))
    if missing:
        sys.exit(f"nn_torch.py: parameter names differ between icl and torch ({kind}): {sorted(missing)}")
    state = {k: torch.tensor(np.array(inp[k]), dtype=tdt) for k in names}
    model.load_state_dict(state, strict=True)
    # inputs: (D+1) x (B*T), columns are tokens -> B x T x (D+1)
    tok = torch.tensor(np.array(inp["inputs"]), dtype=tdt).t().reshape(B, T, D + 1)
    y = torch.tensor(np.array(inp["targets"]), dtype=tdt).t()  # B x n
    def forward_backward(m, tok, y):
        m.zero_grad(set_to_none=True)
        out = m(tok)  # B x T
        loss = ((out[:, 0::2] - y) ** 2).mean()  # Eq. 8: x-token columns 0, 2, ..., 2n-2
        loss.backward()
        q = {"out": out.detach().reshape(1, B * T), "loss": loss.detach()}
        q.update({"grad." + k: p.grad.detach().clone() for k, p in m.named_parameters()})
        return q
    got = forward_backward(model, tok, y)
    res = {k: v.numpy().astype(np.float64 if k == "loss" else npdt) for k, v in got.items()}
    # the rounding scale of every quantity: the same model, inputs and loss in float64 (exact copies)
    model64 = copy.deepcopy(model).double()
    _, scale, ref = rounding_scales(lambda: forward_backward(model64, tok.double(), y.double()), UNIT_ROUNDOFF[tdt])
    worst_ratio = 0.0
    for k in got:
        res["tol." + k] = np.array(2 * C * scale[k], dtype=np.float64)
        if dt == "f32":  # torch's own float error against the exact (float64) result
            e = float((got[k].double() - ref[k]).norm() / ref[k].norm()) if float(ref[k].norm()) > 0 else 0.0
            worst_ratio = max(worst_ratio, e / scale[k] if scale[k] > 0 else 0.0)
            if e > C * scale[k]:
                sys.exit(f"nn_torch.py: {kind} {dt} {k}: torch's float error {e:.2e} > C S = {C * scale[k]:.2e}")
    print(f"nn_torch {kind} {dt}: relative rounding scales S: out {scale['out']:.1e}, loss {scale['loss']:.1e}, "
          f"gradients {min(v for k, v in scale.items() if k.startswith('grad.')):.1e} to "
          f"{max(v for k, v in scale.items() if k.startswith('grad.')):.1e}"
          + (f"; torch's float error at most {worst_ratio:.2f} S" if dt == "f32" else ""))
    # the other direction: a torch-initialised model, exported by name
    torch.manual_seed(7)
    m2 = Model(kind, D, H, M, F, TMax, L).to(tdt)
    with torch.no_grad():
        for k, p in m2.named_parameters():
            res["torchinit." + k] = p.numpy().astype(npdt)
        res["torchinit.out"] = m2(tok).numpy().reshape(1, B * T).astype(npdt)
    m2_64 = copy.deepcopy(m2).double()
    with torch.no_grad():
        _, s2, _ = rounding_scales(lambda: {"out": m2_64(tok.double())}, UNIT_ROUNDOFF[tdt])
    res["tol.torchinit.out"] = np.array(2 * C * s2["out"], dtype=np.float64)
    st_write(os.path.join(d, f"nn_{kind}_{dt}_torch.safetensors"), res)


def run_exe(exe, tag, d):
    env = dict(os.environ, ICL_PY_DIR=d)
    r = subprocess.run([exe, tag], env=env)
    if r.returncode != 0:
        sys.exit(f"nn_torch.py: {exe} {tag} failed with exit code {r.returncode}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    torch.set_num_threads(1)
    run_exe(a.exe, "[py-nn-write]", a.dir)
    for kind in ("preln", "paper"):
        for dt in ("f64", "f32"):
            run_case(a.dir, kind, dt)
    run_exe(a.exe, "[py-nn-check]", a.dir)
    print("nn_torch.py: icl's pre-LN and paper models agree with PyTorch (outputs, Eq. 8 loss, gradients)")


if __name__ == "__main__":
    main()

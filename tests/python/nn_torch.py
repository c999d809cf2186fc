#!/usr/bin/env python3
"""Differential test: icl::nn models against PyTorch.

[py-nn-write] exports, for the pre-LN model and the paper model in float and double, the weights
(PyTorch state_dict names and layouts, docs/nn.md) and a batch of ICL prompts. This script builds
the same models in PyTorch (nn.TransformerEncoderLayer(norm_first=True, gelu, dropout=0) with a
causal mask; the paper block by hand), computes the per-token outputs, the paper's Eq. 8 loss and
every parameter gradient, and also exports a torch-initialised model with its outputs.
[py-nn-check] then compares (double <= 1e-10, float <= 1e-4 relative).
"""
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
    out = model(tok)  # B x T
    loss = ((out[:, 0::2] - y) ** 2).mean()  # Eq. 8: x-token columns 0, 2, ..., 2n-2
    loss.backward()
    res = {"out": out.detach().numpy().reshape(1, B * T).astype(npdt),
           "loss": np.array(loss.item(), dtype=np.float64)}
    for k, p in model.named_parameters():
        res["grad." + k] = p.grad.numpy().astype(npdt)
    # the other direction: a torch-initialised model, exported by name
    torch.manual_seed(7)
    m2 = Model(kind, D, H, M, F, TMax, L).to(tdt)
    with torch.no_grad():
        for k, p in m2.named_parameters():
            res["torchinit." + k] = p.numpy().astype(npdt)
        res["torchinit.out"] = m2(tok).numpy().reshape(1, B * T).astype(npdt)
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

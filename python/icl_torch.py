#!/usr/bin/env python3
"""Reference PyTorch runner for icl model files (numpy and torch only).

    import icl_torch
    model = icl_torch.load("model.safetensors")   # a torch.nn.Module
    pred = model(tokens)                           # tokens: (B, T, d+1), batch first, one token per row

works for every model file icl writes (docs/io.md "Model files", format_version 1):

* trained models (icl::train::save_model, Trainer checkpoints): metadata model = pre_ln | paper;
  returns the predictions at the x-tokens (columns 0, 2, 4, ...), shape (B, ceil(T/2));
* constructed models (icl::construct::ConstructedTransformer::save): metadata model = constructed;
  returns one prediction per x-token, or shape (B, 1) for the Theorem 1/2 models (readout.column >= 0).

The tokens are the interleaved encoding of icl::data::encode, transposed: row t of tokens[b] is token
t, [0; x] for an x-token and [y; 0] for a y-token. The module runs in the dtype of the file's
parameters (F32 -> float32, F64 -> float64; long double models are stored as F64).

The forward passes follow icl's exactly (docs/nn.md): LayerNorm with the biased variance and eps
inside the square root, softmax over the causal keys, erf/tanh GeLU or ReLU.
"""
import json
import math
import struct

import numpy as np
import torch
from torch import nn

__all__ = ["load", "read_safetensors", "TrainedModel", "ConstructedModel"]

FORMAT_VERSION = "1"
_NP = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "F16": "<f2", "BF16": None}


def read_safetensors(path):
    """Returns ({name: numpy array}, metadata dict) of a safetensors file (F32, F64, F16, BF16, I64)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: not a safetensors file (shorter than 8 bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: truncated safetensors header")
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        dt = t["dtype"]
        if dt not in _NP:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {dt}")
        if dt == "BF16":  # the upper half of a float32
            u = np.frombuffer(data[b:e], dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(data[b:e], dtype=_NP[dt])
        out[name] = arr.reshape(t["shape"])
    return out, meta


def _flag(meta, key):
    v = meta[key]
    if v not in ("true", "false"):
        raise ValueError(f"metadata {key!r} = {v!r}, expected true or false")
    return v == "true"


def _activation(name):
    if name == "gelu_erf":
        return lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2.0)))
    if name == "gelu_tanh":
        return lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "relu":
        return torch.relu
    raise ValueError(f"unknown activation {name!r}")


def _layer_norm(x, eps, weight=None, bias=None):
    """icl's LayerNorm over the last dimension: (x - mean) / sqrt(mean((x - mean)^2) + eps)."""
    xc = x - x.mean(dim=-1, keepdim=True)
    var = (xc * xc).sum(dim=-1, keepdim=True) / x.shape[-1]
    y = xc * (1 / torch.sqrt(var + eps))
    if weight is not None:
        y = y * weight + bias
    return y


class Block(nn.Module):
    """One decoder block, pre-LN (PyTorch TransformerEncoderLayer(norm_first=True)) or the paper's
    (Eq. 1-5: x = h + attn(h); h' = x + W2 sigma(W1 LN(x) + b1) + b2), from its icl parameters."""

    def __init__(self, params, prefix, kind, heads, head_width, scale, scores, norm_affine, norm_eps,
                 activation, dtype):
        super().__init__()
        t = lambda name: nn.Parameter(torch.tensor(np.array(params[prefix + name]), dtype=dtype),
                                      requires_grad=False)
        self.kind, self.M, self.dh = kind, heads, head_width
        self.scale, self.scores, self.eps = scale, scores, norm_eps
        self.act = _activation(activation)
        self.in_proj_weight = t("self_attn.in_proj_weight")
        self.in_proj_bias = t("self_attn.in_proj_bias") if prefix + "self_attn.in_proj_bias" in params else None
        self.out_w, self.out_b = t("self_attn.out_proj.weight"), t("self_attn.out_proj.bias")
        self.w1, self.b1 = t("linear1.weight"), t("linear1.bias")
        self.w2, self.b2 = t("linear2.weight"), t("linear2.bias")
        self.norms = {}
        names = ("norm1", "norm2") if kind == "pre_ln" else ("norm",)
        for nm in names:
            if norm_affine:
                setattr(self, nm + "_w", t(nm + ".weight"))
                setattr(self, nm + "_b", t(nm + ".bias"))
                self.norms[nm] = (nm + "_w", nm + "_b")
            else:
                self.norms[nm] = None

    def _ln(self, x, nm):
        if self.norms[nm] is None:
            return _layer_norm(x, self.eps)
        w, b = self.norms[nm]
        return _layer_norm(x, self.eps, getattr(self, w), getattr(self, b))

    def attention(self, h):  # (B, T, H) -> (B, T, H)
        B, T, _ = h.shape
        M, dh = self.M, self.dh
        qkv = h @ self.in_proj_weight.t()
        if self.in_proj_bias is not None:
            qkv = qkv + self.in_proj_bias
        q, k, v = qkv.split(M * dh, dim=-1)
        q = q.reshape(B, T, M, dh).transpose(1, 2)  # B x M x T x dh
        k = k.reshape(B, T, M, dh).transpose(1, 2)
        v = v.reshape(B, T, M, dh).transpose(1, 2)
        s = self.scale * (q @ k.transpose(-1, -2))  # query x key
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        if self.scores == "softmax":
            s = s.masked_fill(~causal, float("-inf"))
            a = torch.softmax(s, dim=-1)
        elif self.scores == "linear":
            a = s.masked_fill(~causal, 0.0)
        else:
            raise ValueError(f"unknown scores {self.scores!r}")
        o = (a @ v).transpose(1, 2).reshape(B, T, M * dh)
        return o @ self.out_w.t() + self.out_b

    def mlp(self, z):
        return self.act(z @ self.w1.t() + self.b1) @ self.w2.t() + self.b2

    def forward(self, h):
        if self.kind == "pre_ln":
            x = h + self.attention(self._ln(h, "norm1"))
            return x + self.mlp(self._ln(x, "norm2"))
        x = h + self.attention(h)
        return x + self.mlp(self._ln(x, "norm"))


def _blocks(params, meta, kind, dtype, n_blocks, heads):
    return nn.ModuleList([
        Block(params, f"blocks.{b}.", kind, heads, int(meta["block.head_width"]), float(meta["block.score_scale"]),
              meta["block.scores"], _flag(meta, "block.norm_affine"), float(meta["block.norm_eps"]),
              meta["block.activation"], dtype) for b in range(n_blocks)])


class TrainedModel(nn.Module):
    """icl::nn::Transformer: read_in, position embedding, blocks, optional final norm, read_out."""

    def __init__(self, params, meta, dtype):
        super().__init__()
        self.d, self.max_tokens = int(meta["d"]), int(meta["max_tokens"])
        t = lambda name: nn.Parameter(torch.tensor(np.array(params[name]), dtype=dtype), requires_grad=False)
        self.read_in_w, self.read_in_b = t("read_in.weight"), t("read_in.bias")
        self.pos = t("pos_embedding.weight")
        self.blocks = _blocks(params, meta, meta["model"], dtype, int(meta["layers"]), int(meta["heads"]))
        self.final_norm = _flag(meta, "final_norm")
        self.fn_eps = float(meta["final_norm.eps"])
        self.fn_affine = self.final_norm and _flag(meta, "final_norm.affine")
        if self.fn_affine:
            self.norm_f_w, self.norm_f_b = t("norm_f.weight"), t("norm_f.bias")
        self.read_out_w, self.read_out_b = t("read_out.weight"), t("read_out.bias")

    def forward(self, tokens):  # (B, T, d+1) -> (B, ceil(T/2))
        if tokens.dim() != 3 or tokens.shape[-1] != self.d + 1:
            raise ValueError(f"tokens: expected (B, T, {self.d + 1}), got {tuple(tokens.shape)}")
        if tokens.shape[1] % 2 == 0:  # a trailing y-token changes no x-token output (causal): drop it, as C++ predict
            tokens = tokens[:, :-1]
        T = tokens.shape[1]
        if T > self.max_tokens:
            raise ValueError(f"tokens: {T} tokens need a model built for max_tokens >= {T}, this one has "
                             f"{self.max_tokens} (n examples and a query: 2n + 1; n examples only: 2n - 1)")
        h = tokens.to(self.pos.dtype) @ self.read_in_w.t() + self.read_in_b + self.pos[:T]
        for blk in self.blocks:
            h = blk(h)
        if self.final_norm:
            h = _layer_norm(h, self.fn_eps, self.norm_f_w, self.norm_f_b) if self.fn_affine else \
                _layer_norm(h, self.fn_eps)
        out = (h @ self.read_out_w.t() + self.read_out_b)[..., 0]  # B x T
        return out[:, 0::2]


class ConstructedModel(nn.Module):
    """icl::construct::ConstructedTransformer: tokens into rows [0, d+1), the stored position rows
    (embed.position) added, the scheduled paper blocks, the readout row at the x-tokens (or one column)."""

    def __init__(self, params, meta, dtype):
        super().__init__()
        self.d, self.H, self.max_tokens = int(meta["d"]), int(meta["hidden"]), int(meta["max_tokens"])
        self.pos = nn.Parameter(torch.tensor(np.array(params["embed.position"]), dtype=dtype), requires_grad=False)
        n_blocks = 0
        while f"blocks.{n_blocks}.linear1.weight" in params:
            n_blocks += 1
        self.blocks = _blocks(params, meta, "paper", dtype, n_blocks, int(meta["heads"]))
        self.schedule = [int(b) for b in np.array(params["schedule"]).reshape(-1)]
        self.row, self.column = int(meta["readout.row"]), int(meta["readout.column"])

    def forward(self, tokens):  # (B, T, d+1) -> (B, #x-tokens) or (B, 1)
        if tokens.dim() != 3:
            raise ValueError(f"tokens: expected (B, T, {self.d + 1}), got {tuple(tokens.shape)}")
        B, T, w = tokens.shape
        if w != self.d + 1 or T > self.max_tokens:
            raise ValueError(f"tokens: expected (B, T <= {self.max_tokens}, {self.d + 1}), got {tuple(tokens.shape)}")
        h = torch.zeros(B, T, self.H, dtype=self.pos.dtype)
        h[:, :, :w] = tokens.to(self.pos.dtype)
        h = h + self.pos[:T]
        for b in self.schedule:
            h = self.blocks[b](h)
        if self.column >= 0:
            return h[:, self.column, self.row:self.row + 1]
        return h[:, 0::2, self.row]


def load(path):
    """A torch.nn.Module for an icl model file (trained pre-LN, trained paper or constructed)."""
    params, meta = read_safetensors(path)
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {meta.get('format_version')!r}; this runner reads version "
                         f"{FORMAT_VERSION} (files written before it, icl 0.x, are not supported)")
    ref = params.get("read_in.weight", params.get("embed.position"))
    if ref is None:
        raise ValueError(f"{path}: neither read_in.weight nor embed.position: not an icl model file")
    dtype = torch.float32 if ref.dtype == np.dtype("<f4") else torch.float64
    model = meta.get("model")
    if model in ("pre_ln", "paper"):
        m = TrainedModel(params, meta, dtype)
    elif model == "constructed":
        m = ConstructedModel(params, meta, dtype)
    else:
        raise ValueError(f"{path}: metadata model = {model!r}, expected pre_ln, paper or constructed")
    return m.eval()

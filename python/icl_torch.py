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
import zlib

import numpy as np
import torch
from torch import nn

__all__ = ["load", "read_safetensors", "IoError", "TrainedModel", "ConstructedModel"]

FORMAT_VERSION = "1"
_NP = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "F16": "<f2", "BF16": None}
_SIZE = {"F32": 4, "F64": 8, "I64": 8, "F16": 2, "BF16": 2}
MAX_HEADER_BYTES = 100 * 1000 * 1000  # as icl::io::SafeTensors::kMaxHeaderBytes
CHECKSUM_PREFIX = "icl.crc32."  # as icl::io::SafeTensors::kChecksumPrefix (docs/io.md, "Checksums")


class IoError(ValueError):
    """A file icl_torch refuses: the checks and messages of icl::IoError (icl::io::SafeTensors::from_bytes,
    the model loaders). A ValueError, so `except ValueError` keeps working."""


def _shape(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError(f"duplicate key {json.dumps(k)}")
        seen[k] = v
    return seen


def _uint(v, ctx, name, field):
    if type(v) is not int or v < 0:  # bool is not int here; floats such as 2.0 are refused
        raise IoError(f"{ctx}: corrupt header: {field} of '{name}' must hold non-negative integers, got '{v}'")
    return v


def read_safetensors(path):
    """Returns ({name: numpy array}, metadata dict) of a safetensors file (F32, F64, F16, BF16, I64).

    Validates as icl::io::SafeTensors::from_bytes does, with its messages (IoError): the header
    length, the JSON header (strict: duplicate keys, NaN and invalid UTF-8 are refused), dtypes,
    shapes, data_offsets that match shape x dtype size and tile the data section exactly, and the
    per-tensor CRC-32 checksums ("icl.crc32.<name>", written by icl; a file without them is accepted)
    -- which are removed from the returned metadata, as in C++."""
    ctx = f"safetensors '{path}'"
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise IoError(f"{ctx}: truncated: {len(raw)} bytes, a safetensors file has at least an 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > MAX_HEADER_BYTES:
        raise IoError(f"{ctx}: header length {n} exceeds the limit of {MAX_HEADER_BYTES} bytes (corrupt or not a "
                      f"safetensors file)")
    if n > len(raw) - 8:
        raise IoError(f"{ctx}: truncated: header length {n} but only {len(raw) - 8} bytes follow")
    try:
        def no_constant(c):
            raise ValueError(f"{c} is not JSON")
        header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=_no_duplicates,
                            parse_constant=no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise IoError(f"{ctx}: corrupt JSON header: {e}") from None
    if not isinstance(header, dict):
        raise IoError(f"{ctx}: corrupt header: the JSON header is not an object")
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict):
        raise IoError(f"{ctx}: corrupt header: __metadata__ is not an object")
    for k, v in meta.items():
        if not isinstance(v, str):
            raise IoError(f"{ctx}: corrupt header: __metadata__ value of '{k}' is not a string")
    out, spans, raw_bytes = {}, [], {}
    for name, t in header.items():
        if not isinstance(t, dict):
            raise IoError(f"{ctx}: corrupt header: entry '{name}' is not an object")
        for k in t:
            if k not in ("dtype", "shape", "data_offsets"):
                raise IoError(f"{ctx}: corrupt header: tensor '{name}' has unknown field '{k}'")
        if len(t) != 3:
            raise IoError(f"{ctx}: corrupt header: tensor '{name}' lacks dtype, shape or data_offsets")
        dt, shape, offs = t["dtype"], t["shape"], t["data_offsets"]
        if not isinstance(dt, str):
            raise IoError(f"{ctx}: corrupt header: dtype of '{name}' is not a string")
        if dt not in _NP:
            raise IoError(f"{ctx}: tensor '{name}' has dtype {dt}; icl reads only F32, F64, F16, BF16 and I64")
        if not isinstance(shape, list):
            raise IoError(f"{ctx}: corrupt header: shape of '{name}' is not an array")
        shape = [_uint(d, ctx, name, "shape") for d in shape]
        if not isinstance(offs, list) or len(offs) != 2:
            raise IoError(f"{ctx}: corrupt header: data_offsets of '{name}' is not a pair")
        b, e = (_uint(o, ctx, name, "data_offsets") for o in offs)
        if not (b <= e <= len(data)):
            raise IoError(f"{ctx}: truncated or corrupt: tensor '{name}' has data_offsets [{b}, {e}] but the data "
                          f"section has {len(data)} bytes")
        nbytes = math.prod(shape) * _SIZE[dt]
        if e - b != nbytes:
            raise IoError(f"{ctx}: corrupt: tensor '{name}' has shape {_shape(shape)} {dt} ({nbytes} bytes) but "
                          f"data_offsets span {e - b} bytes")
        spans.append((b, e, name))
        raw_bytes[name] = data[b:e]
        if dt == "BF16":  # the upper half of a float32
            u = np.frombuffer(data[b:e], dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(data[b:e], dtype=_NP[dt])
        out[name] = arr.reshape(shape)
    at = 0
    for b, e, name in sorted(spans):  # the tiling rule of docs/io.md, "Data layout"
        if b != at:
            raise IoError(f"{ctx}: corrupt: tensor '{name}' starts at byte {b} of the data section, expected {at} "
                          f"(overlapping or non-contiguous tensors)")
        at = e
    if at != len(data):
        raise IoError(f"{ctx}: corrupt: {len(data) - at} trailing bytes after the last tensor's data")
    sums = {k[len(CHECKSUM_PREFIX):]: v for k, v in meta.items() if k.startswith(CHECKSUM_PREFIX)}
    for name, stored in sorted(sums.items()):
        if name not in raw_bytes:
            raise IoError(f"{ctx}: metadata '{CHECKSUM_PREFIX}{name}' is the checksum of a tensor '{name}' that the "
                          f"file does not have")
        got = f"{zlib.crc32(raw_bytes[name]):08x}"
        if got != stored:
            raise IoError(f"{ctx}: tensor '{name}': checksum mismatch (crc32 {got} of the data, {stored} stored when "
                          f"the file was written): the tensor's bytes changed after writing")
    if sums:
        for name in sorted(out):
            if name not in sums:
                raise IoError(f"{ctx}: tensor '{name}' has no checksum ('{CHECKSUM_PREFIX}{name}') while others "
                              f"have: the file was changed after icl wrote it")
    meta = {k: v for k, v in meta.items() if not k.startswith(CHECKSUM_PREFIX)}
    return out, meta


def _int_meta(meta, key, ctx, lo=0):
    v = meta.get(key)
    if v is None:
        raise IoError(f"{ctx}: metadata '{key}' is missing")
    try:
        out = int(v)
    except ValueError:
        out = None
    if out is None or str(out) != v or out < lo or out > 2 ** 30:
        raise IoError(f"{ctx}: metadata '{key}' = '{v}' is not an integer in range")
    return out


def _check_params(params, expected, ctx, others=()):
    """Every expected parameter present with its shape (a vector [n] may be stored [n] or [n, 1]) and
    finite, and (for a trained model) no other tensor: the checks of icl::train::read_parameters."""
    for name, shape in expected.items():
        if name not in params:
            raise IoError(f"{ctx}: parameter '{name}' {_shape(shape)} is missing: the file was written for "
                          f"another model")
        a = params[name]
        if list(a.shape) != list(shape):
            if len(shape) == 1 and a.ndim == 2 and a.shape == (shape[0], 1):
                params[name] = a = a.reshape(shape)
            else:
                raise IoError(f"{ctx}: parameter '{name}' has shape {_shape(a.shape)} in the file, but the "
                              f"architecture metadata implies {_shape(shape)}")
        if not np.all(np.isfinite(a)):
            raise IoError(f"{ctx}: parameter '{name}' has NaN or Inf values: the file is corrupt or from a "
                          f"diverged run")
    for name in params:
        if name not in expected and not any(name.startswith(o) or name == o for o in others):
            raise IoError(f"{ctx}: tensor '{name}' is not a parameter of this model (the architecture metadata "
                          f"names no such parameter)")


def _block_shapes(prefix, kind, H, heads, dh, F, qkv_bias, norm_affine):
    sh = {prefix + "self_attn.in_proj_weight": [3 * heads * dh, H],
          prefix + "self_attn.out_proj.weight": [H, heads * dh], prefix + "self_attn.out_proj.bias": [H],
          prefix + "linear1.weight": [F, H], prefix + "linear1.bias": [F],
          prefix + "linear2.weight": [H, F], prefix + "linear2.bias": [H]}
    if qkv_bias:
        sh[prefix + "self_attn.in_proj_bias"] = [3 * heads * dh]
    if norm_affine:
        for nm in (("norm1", "norm2") if kind == "pre_ln" else ("norm",)):
            sh[prefix + nm + ".weight"] = [H]
            sh[prefix + nm + ".bias"] = [H]
    return sh


def _check_tokens(tokens, d, dtype, who):
    """The token checks of C++ predict (same messages), plus the dtype: C++ is typed, here a float64
    batch into a float32 model would be rounded silently."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 3 or tokens.shape[-1] != d + 1:
        got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"{who}: tokens: expected a tensor (B, T, d+1 = {d + 1}), got {got}")
    if tokens.dtype != dtype:
        raise ValueError(f"{who}: tokens: dtype {tokens.dtype}, but the model runs in {dtype} (the dtype of the "
                         f"file's parameters); convert explicitly, e.g. tokens.to({dtype})")
    if tokens.shape[1] < 1:
        raise ValueError(f"{who}: tokens: expected at least one token, got 0")
    if not bool(torch.isfinite(tokens).all()):
        raise ValueError(f"{who}: tokens: expected finite values, found NaN or Inf")


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

    def __init__(self, params, meta, dtype, ctx="model file"):
        super().__init__()
        self.d, self.max_tokens = _int_meta(meta, "d", ctx, 1), _int_meta(meta, "max_tokens", ctx, 1)
        H, M, F = _int_meta(meta, "hidden", ctx, 1), _int_meta(meta, "heads", ctx, 1), _int_meta(meta, "mlp", ctx, 1)
        L, dh = _int_meta(meta, "layers", ctx, 0), _int_meta(meta, "block.head_width", ctx, 1)
        kind = meta["model"]
        want = {"read_in.weight": [H, self.d + 1], "read_in.bias": [H], "pos_embedding.weight": [self.max_tokens, H],
                "read_out.weight": [1, H], "read_out.bias": [1]}
        for b in range(L):
            want.update(_block_shapes(f"blocks.{b}.", kind, H, M, dh, F, _flag(meta, "block.qkv_bias"),
                                      _flag(meta, "block.norm_affine")))
        if _flag(meta, "final_norm") and _flag(meta, "final_norm.affine"):
            want.update({"norm_f.weight": [H], "norm_f.bias": [H]})
        # a training checkpoint is also a model file: its optimiser and trainer state are not parameters
        _check_params(params, want, ctx, others=("optim.", "train."))
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
        _check_tokens(tokens, self.d, self.pos.dtype, "TrainedModel")
        if tokens.shape[1] % 2 == 0:  # a trailing y-token changes no x-token output (causal): drop it, as C++ predict
            tokens = tokens[:, :-1]
        T = tokens.shape[1]
        if T > self.max_tokens:
            raise ValueError(f"tokens: {T} tokens need a model built for max_tokens >= {T}, this one has "
                             f"{self.max_tokens} (n examples and a query: 2n + 1; n examples only: 2n - 1)")
        h = tokens @ self.read_in_w.t() + self.read_in_b + self.pos[:T]
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

    def __init__(self, params, meta, dtype, ctx="model file"):
        super().__init__()
        self.d, self.H = _int_meta(meta, "d", ctx, 1), _int_meta(meta, "hidden", ctx, 1)
        self.max_tokens = _int_meta(meta, "max_tokens", ctx, 1)
        M, dh = _int_meta(meta, "heads", ctx, 1), _int_meta(meta, "block.head_width", ctx, 1)
        n_blocks = 0
        while f"blocks.{n_blocks}.linear1.weight" in params:
            n_blocks += 1
        want = {"embed.position": [self.max_tokens, self.H]}
        for b in range(n_blocks):
            F = params[f"blocks.{b}.linear1.weight"].shape[0]  # the realised MLP width, per block
            want.update(_block_shapes(f"blocks.{b}.", "paper", self.H, M, dh, F, False, False))
        if "schedule" not in params:
            raise IoError(f"{ctx}: tensor 'schedule' is missing")
        sched = np.array(params["schedule"]).reshape(-1)
        if len(sched) != _int_meta(meta, "layers", ctx, 0) or not all(
                float(b) == int(b) and 0 <= int(b) < n_blocks for b in sched):
            raise IoError(f"{ctx}: schedule {sched.tolist()} must list 'layers' = {meta.get('layers')} entries, each "
                          f"naming one of the {n_blocks} stored blocks")
        _check_params(params, want, ctx, others=("schedule", "chain.", "embed.table.", "operand_hints"))
        self.row, self.column = _int_meta(meta, "readout.row", ctx, 0), _int_meta(meta, "readout.column", ctx, -1)
        if self.row >= self.H or self.column >= self.max_tokens:
            raise IoError(f"{ctx}: readout row {self.row} / column {self.column} outside the state "
                          f"({self.H} rows, {self.max_tokens} columns)")
        self.pos = nn.Parameter(torch.tensor(np.array(params["embed.position"]), dtype=dtype), requires_grad=False)
        self.blocks = _blocks(params, meta, "paper", dtype, n_blocks, M)
        self.schedule = [int(b) for b in sched]

    def forward(self, tokens):  # (B, T, d+1) -> (B, #x-tokens) or (B, 1)
        _check_tokens(tokens, self.d, self.pos.dtype, "ConstructedModel")
        B, T, w = tokens.shape
        if T > self.max_tokens:  # the message of C++ ConstructedTransformer::embed
            raise ValueError(f"ConstructedModel: built for at most {self.max_tokens // 2} examples ({self.max_tokens} "
                             f"tokens), got {T} tokens")
        h = torch.zeros(B, T, self.H, dtype=self.pos.dtype)
        h[:, :, :w] = tokens
        h = h + self.pos[:T]
        for b in self.schedule:
            h = self.blocks[b](h)
        if self.column >= 0:
            return h[:, self.column, self.row:self.row + 1]
        return h[:, 0::2, self.row]


def load(path):
    """A torch.nn.Module for an icl model file (trained pre-LN, trained paper or constructed)."""
    params, meta = read_safetensors(path)
    ctx = f"model file '{path}'"
    if "format_version" not in meta:
        raise IoError(f"{ctx}: no 'format_version' metadata: the file was written before model-file format 1 "
                      f"(icl 0.x) or is not an icl model file; re-save it with this version")
    if meta["format_version"] != FORMAT_VERSION:
        raise IoError(f"{ctx}: format_version = {meta['format_version']}, this runner reads version {FORMAT_VERSION}")
    ref = params.get("read_in.weight", params.get("embed.position"))
    if ref is None:
        raise IoError(f"{ctx}: neither read_in.weight nor embed.position: not an icl model file")
    if ref.dtype not in (np.dtype("<f4"), np.dtype("<f8")):
        raise IoError(f"{ctx}: parameters stored as {ref.dtype}; icl writes models as F32 or F64")
    dtype = torch.float32 if ref.dtype == np.dtype("<f4") else torch.float64
    params = dict(params)  # _check_params may reshape [n, 1] vectors
    model = meta.get("model")
    if model in ("pre_ln", "paper"):
        m = TrainedModel(params, meta, dtype, ctx)
    elif model == "constructed":
        m = ConstructedModel(params, meta, dtype, ctx)
    else:
        raise IoError(f"{ctx}: metadata model = {model!r}, expected pre_ln, paper or constructed")
    return m.eval()

"""The rounding error of a torch computation, estimated from the computation itself (not from one
BLAS's run), for the tolerances of the Python differential tests (issue 19 §1).

A float computation of y = f(x) returns fl(y) = y + e, where e collects the rounding of every
operation, amplified by how much the result depends on that operation's output. Two correct
implementations (icl's C++ and torch, or torch on two BLAS libraries) make different roundings, so
their e differ; what they share is the *scale* of e on this input. `rounding_scale` estimates that
scale by running f in float64 -- where the computation is exact to within a factor
2^-53 / u of the rounding being modelled -- while a TorchDispatchMode perturbs the output of every
rounding operation as a rounding would:

* elementwise (add, mul, div, sqrt, exp, erf, tanh, pow, ...) and any operation not listed here:
  out * (1 + u xi);
* a k-term reduction (mm, bmm, addmm, sum, mean): additionally u xi' sqrt(k) * (sum of |terms|):
  recursive or blocked summation commits about k roundings, each of size u times a partial sum
  bounded by the sum of |terms| (that is what makes cancellation, e.g. LayerNorm over the
  constructions' large pads, expensive); their sum grows like sqrt(k) when the signs are random;
* softmax, LayerNorm and their backward passes (an inner k-term reduction over the last
  dimension): out * (1 + u (2 + sqrt(k)) xi);

with xi, xi' uniform in [-1, 1] (a rounding to nearest is uniform in [-u, u] relative), u the unit
roundoff of the precision being modelled (2^-24 for float32, 2^-53 for float64). Views, copies,
negation, relu, masking and comparisons are exact and are not perturbed (the list _EXACT); every
other operation, the backward passes' included (the mode sits below autograd), rounds. The scale is the largest deviation from
the unperturbed float64 run over `runs` independent draws and every output. It depends on the
input and the weights only, so it is the same whichever BLAS torch uses.
"""
import math

import torch
from torch.utils._python_dispatch import TorchDispatchMode

UNIT_ROUNDOFF = {torch.float32: 2.0 ** -24, torch.float64: 2.0 ** -53}

# Operations that do not round: views, copies, selections, sign changes, constants.
_EXACT = {"view", "_unsafe_view", "reshape", "t", "transpose", "permute", "expand", "slice", "select", "squeeze",
          "unsqueeze", "as_strided", "alias", "detach", "clone", "copy", "_to_copy", "lift_fresh", "split",
          "split_with_sizes", "unbind", "cat", "stack", "index", "index_select", "embedding", "masked_fill", "where",
          "neg", "abs", "relu", "threshold_backward", "triu", "tril", "zeros", "zeros_like", "ones", "ones_like",
          "full", "full_like", "empty", "empty_like", "new_empty", "new_zeros", "new_ones", "fill", "arange",
          "scalar_tensor", "_local_scalar_dense", "gt", "lt", "ge", "le", "eq", "ne", "isfinite", "logical_not",
          "bitwise_not", "_reshape_alias", "unfold", "diagonal", "contiguous", "resize", "zero", "max", "min"}
# Operations with an inner reduction over the last dimension besides their elementwise rounding:
# its k roundings add u sqrt(k) |out| (softmax, LayerNorm and their backward passes).
_LAST_DIM_REDUCTION = {"_softmax", "_log_softmax", "_softmax_backward_data", "native_layer_norm",
                       "native_layer_norm_backward", "embedding_dense_backward"}


class _Perturb(TorchDispatchMode):
    def __init__(self, u, gen):
        super().__init__()
        self.u, self.gen = u, gen

    def _xi(self, t):
        return 2 * torch.rand(t.shape, generator=self.gen, dtype=t.dtype) - 1

    def _elementwise(self, out, factor=1.0):
        return self._finite(out, out * (self.u * factor) * self._xi(out))

    @staticmethod
    def _finite(out, pert):  # Inf entries (a -inf attention mask) round to themselves: no NaN from Inf * 0
        return torch.where(torch.isfinite(out), pert, torch.zeros_like(pert))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func._schema.name.split("::")[-1]
        inplace = name.endswith("_") and not name.startswith("_")
        base = name[:-1] if inplace else name
        if base in _EXACT:
            return out
        if isinstance(out, (tuple, list)):  # e.g. native_layer_norm: (out, mean, rstd); perturb each
            k = out[0].shape[-1] if isinstance(out[0], torch.Tensor) and out[0].dim() else 1
            f = 1 + math.sqrt(k) if base in _LAST_DIM_REDUCTION else 1.0
            return type(out)(o + self._elementwise(o, f) if isinstance(o, torch.Tensor) and o.is_floating_point()
                             and o.numel() else o for o in out)
        if not isinstance(out, torch.Tensor) or not out.is_floating_point() or out.numel() == 0:
            return out
        if base in ("mm", "bmm", "addmm", "baddbmm"):
            a, b = (args[1], args[2]) if base in ("addmm", "baddbmm") else (args[0], args[1])
            mag = (a.abs() @ b.abs()) if base in ("mm", "addmm") else torch.bmm(a.abs(), b.abs())
            k = a.shape[-1]
            if base in ("addmm", "baddbmm"):
                mag = mag + args[0].abs()
                k += 1
            pert = self._elementwise(out) + self.u * math.sqrt(k) * mag * self._xi(out)
        elif base in ("sum", "mean"):
            x = args[0]
            dims = args[1] if len(args) > 1 and args[1] is not None else list(range(x.dim()))
            dims = [dims] if isinstance(dims, int) else list(dims)
            keep = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
            k = math.prod(x.shape[d] for d in dims) if dims else x.numel()
            mag = x.abs().sum(dim=dims, keepdim=keep) if dims else x.abs().sum()
            if base == "mean":
                mag = mag / k
            pert = self._elementwise(out) + self.u * math.sqrt(k) * mag * self._xi(out)
        elif base in _LAST_DIM_REDUCTION:
            pert = self._elementwise(out, 2 + math.sqrt(out.shape[-1] if out.dim() else 1))
        else:  # any other arithmetic (add, mul, div, sqrt, exp, erf, tanh, pow, *_backward, ...)
            pert = self._elementwise(out)
        pert = self._finite(out, pert)
        if inplace:
            out.add_(pert)
            return out
        return out + pert


def rounding_scales(fn, u, runs=8, seed=0):
    """fn() -> {name: tensor}, run in float64 (autograd allowed: backward passes are perturbed too).
    Returns ({name: max over `runs` simulated roundings of |fn()[name] - ref[name]|, as a tensor of
    the entries' deviations' maximum}, {name: relative scale, the same in the 2-norm divided by
    |ref[name]|}, ref) with ref the unperturbed run."""
    ref = {k: v.detach().double() for k, v in fn().items()}
    gen = torch.Generator().manual_seed(seed)
    worst = {k: 0.0 for k in ref}
    worst_rel = {k: 0.0 for k in ref}
    for _ in range(runs):
        with _Perturb(u, gen):
            sim = fn()
        for k, v in sim.items():
            finite = torch.isfinite(ref[k])  # compare where the exact result is finite
            dv = (v.detach().double() - ref[k])[finite]
            if not bool(torch.isfinite(dv).all()):
                raise RuntimeError(f"rounding_scales: the simulated rounding made '{k}' non-finite")
            worst[k] = max(worst[k], float(dv.abs().max()) if dv.numel() else 0.0)
            norm = float(ref[k][finite].norm())
            worst_rel[k] = max(worst_rel[k], float(dv.norm()) / norm if norm > 0 else 0.0)
    return worst, worst_rel, ref


def rounding_scale(fn, u, runs=8, seed=0):
    """max over `runs` simulated roundings (unit roundoff u) and every output of |fn() - fn()|, the
    second fn() unperturbed; fn runs in float64. Returns (scale, unperturbed result)."""
    with torch.no_grad():
        worst, _, ref = rounding_scales(lambda: {"out": fn()}, u, runs, seed)
    return worst["out"], ref["out"]

#!/usr/bin/env python3
"""Times PyTorch (float32, one thread) on the shapes of bench/bench_nn.cpp and prints the ratio
table against icl's Google Benchmark JSON output. bench/compare_nn.sh runs both in the same run,
in alternating rounds, with the anchor's BLAS settings (docs/performance.md); by hand:

    ./build/bench/icl_bench_nn --benchmark_min_time=0.05 --benchmark_repetitions=5 \
        --benchmark_format=json > icl_nn.json
    /usr/bin/python3 bench/torch_nn.py --icl-json icl_nn.json [--H 64 128 256 512] [--reps 5]

Benchmark names are shared with bench_nn.cpp: "gemm/m:M/k:K/n:N" and "<layer>/<fwd|fwdbwd>/H:H".
FLOP conventions (docs/performance.md): matrix products count 2 m n k; forward+backward counts
3x the forward (input gradient + weight gradient); elementwise layers get the nominal counts of
flops_per_element below. Speed ratios are computed from times, so conventions cancel there.
"""
import argparse
import json
import statistics
import sys
import time

import torch

T, BATCH, HEADS = 79, 64, 4
N = T * BATCH

# nominal FLOPs per element for the elementwise layers (same numbers in bench_nn.cpp)
FLOPS_LAYERNORM = 8  # mean, centre, square-sum, rsqrt-scale, gain, bias
FLOPS_GELU = 8
FLOPS_SOFTMAX = 5  # max, subtract, exp, sum, divide


def flops(layer, H):
    """Forward FLOPs of one call on the whole batch (keep equal to bench_nn.cpp)."""
    F = 4 * H
    attn_scores = 4 * BATCH * T * T * H  # QK^T and PV over all heads, full T x T (mask not skipped)
    return {
        "linear": 2 * N * H * H,
        "layernorm": FLOPS_LAYERNORM * N * H,
        "gelu": FLOPS_GELU * N * F,
        "softmax": FLOPS_SOFTMAX * BATCH * HEADS * T * T,
        "attention": 8 * N * H * H + attn_scores,
        "feedforward": 4 * N * H * F,
        "block": 8 * N * H * H + attn_scores + 4 * N * H * F,
    }[layer]


def causal_mask():
    return torch.triu(torch.full((T, T), float("-inf")), diagonal=1)


def make(layer, H):
    """Returns (module or function, input tensor) for the layer."""
    torch.manual_seed(0)
    F = 4 * H
    if layer == "linear":
        m = torch.nn.Linear(H, H)
        return (lambda x: m(x)), torch.randn(BATCH, T, H)
    if layer == "layernorm":
        m = torch.nn.LayerNorm(H)
        return (lambda x: m(x)), torch.randn(BATCH, T, H)
    if layer == "gelu":
        return (lambda x: torch.nn.functional.gelu(x)), torch.randn(BATCH, T, F)
    if layer == "softmax":
        mask = causal_mask()
        return (lambda x: torch.softmax(x + mask, dim=-1)), torch.randn(BATCH * HEADS, T, T)
    if layer == "attention":
        m = torch.nn.MultiheadAttention(H, HEADS, dropout=0.0, bias=True, batch_first=True)
        mask = causal_mask()
        return (lambda x: m(x, x, x, attn_mask=mask, need_weights=False)[0]), torch.randn(BATCH, T, H)
    if layer == "feedforward":
        l1, l2 = torch.nn.Linear(H, F), torch.nn.Linear(F, H)
        return (lambda x: l2(torch.nn.functional.gelu(l1(x)))), torch.randn(BATCH, T, H)
    if layer == "block":
        m = torch.nn.TransformerEncoderLayer(H, HEADS, dim_feedforward=F, dropout=0.0, activation="gelu",
                                             batch_first=True, norm_first=True)
        mask = causal_mask()
        return (lambda x: m(x, src_mask=mask)), torch.randn(BATCH, T, H)
    raise ValueError(layer)


def gemm(m, k, n):
    a, b = torch.randn(m, k), torch.randn(k, n)
    return lambda: torch.mm(a, b)


def time_call(fn, reps, min_time, reduce=statistics.median):
    """`reduce` (default: the median) over `reps` repetitions of the mean time per call, each
    repetition >= min_time s and >= 1 call, after one warm-up call (bench/torch_train.py takes the
    best, reduce=min)."""
    fn()  # warm-up
    out = []
    for _ in range(reps):
        iters, t0 = 0, time.perf_counter()
        while True:
            fn()
            iters += 1
            el = time.perf_counter() - t0
            if el >= min_time:
                break
        out.append(el / iters)
    return reduce(out)


LAYERS = ["linear", "layernorm", "gelu", "softmax", "attention", "feedforward", "block"]


def torch_times(Hs, reps, min_time, layers):
    res = {}
    gemms = []
    for H in Hs:
        gemms += [(H, H, N), (4 * H, H, N), (H, 4 * H, N)]
    for (m, k, n) in gemms:
        name = f"gemm/m:{m}/k:{k}/n:{n}"
        res[name] = (time_call(gemm(m, k, n), reps, min_time), 2 * m * n * k)
        print(f"  torch {name}: {res[name][0] * 1e3:.2f} ms", file=sys.stderr)
    for H in Hs:
        for layer in layers:
            fn, x = make(layer, H)
            with torch.no_grad():
                t = time_call(lambda: fn(x), reps, min_time)
            res[f"{layer}/fwd/H:{H}"] = (t, flops(layer, H))
            xg = x.clone().requires_grad_(True)

            def fwdbwd():
                y = fn(xg)
                y.backward(torch.ones_like(y))

            res[f"{layer}/fwdbwd/H:{H}"] = (time_call(fwdbwd, reps, min_time), 3 * flops(layer, H))
            print(f"  torch {layer} H={H}: fwd {t * 1e3:.2f} ms, fwd+bwd {res[f'{layer}/fwdbwd/H:{H}'][0] * 1e3:.2f} ms",
                  file=sys.stderr)
    return res


def icl_times(paths):
    """name -> (median seconds, median FLOPS rate) from Google Benchmark JSON files (the repetitions of
    every file pooled; aggregate rows skipped)."""
    per = {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        for b in data["benchmarks"]:
            if b.get("run_type") == "aggregate":
                continue
            name = b.get("run_name", b["name"])
            if name.startswith("BM_"):
                name = name[3:]
            scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
            per.setdefault(name, []).append((b["cpu_time"] * scale, b.get("FLOPS", float("nan"))))
    return {k: (statistics.median(t for t, _ in v), statistics.median(r for _, r in v)) for k, v in per.items()}


def torch_best(paths):
    """name -> (seconds, FLOPs), the fastest of several saved PyTorch runs (its timings swing 2-5x)."""
    best = {}
    for path in paths:
        with open(path) as f:
            for name, (t, fl) in json.load(f).items():
                if name not in best or t < best[name][0]:
                    best[name] = (t, fl)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--icl-json", nargs="+", default=[],
                    help="Google Benchmark JSON output(s) of icl_bench_nn (repetitions of all files pooled)")
    ap.add_argument("--torch-json", nargs="+", default=[],
                    help="instead of timing PyTorch now, take the best of these saved runs (--save)")
    ap.add_argument("--save", help="write this run's PyTorch times as JSON (for --torch-json)")
    ap.add_argument("--H", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--layers", nargs="+", default=LAYERS)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--ref", default="largest",
                    help="icl benchmark used as the GEMM reference; 'largest' (default): per width H, the "
                         "block's largest product gemm/m:4H/k:H/n:N of the same run (issue 11's target 1)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}", file=sys.stderr)
    if args.torch_json:
        tt = torch_best(args.torch_json)
    else:
        tt = torch_times(args.H, args.reps, args.min_time, args.layers)
    if args.save:
        with open(args.save, "w") as f:
            json.dump(tt, f, indent=1)
    ours = {}
    if args.icl_json:
        ours = icl_times(args.icl_json)

    def ref_rate(name):
        if args.ref != "largest":
            return ours.get(args.ref, (float("nan"), float("nan")))[1], args.ref
        H = int(name.rsplit("H:", 1)[1]) if "/H:" in name else None
        if H is None:
            return float("nan"), "-"
        key = f"gemm/m:{4 * H}/k:{H}/n:{N}"
        return ours.get(key, (float("nan"), float("nan")))[1], key

    def openblas_rate(name):
        """PyTorch's (OpenBLAS's) rate on the block's largest product at the row's width, same run."""
        if "/H:" not in name:
            return float("nan")
        H = int(name.rsplit("H:", 1)[1])
        t_fl = tt.get(f"gemm/m:{4 * H}/k:{H}/n:{N}")
        return t_fl[1] / t_fl[0] if t_fl else float("nan")

    if "fma_peak" in ours:
        print(f"one core's FMA peak (fma_peak, same run): {ours['fma_peak'][1] / 1e9:.1f} GFLOP/s")
    print("| benchmark | icl ms | icl GFLOP/s | icl % of ref GEMM (ref) | icl % of OpenBLAS GEMM | torch ms (best) | "
          "torch GFLOP/s | icl speed vs torch |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, (t, fl) in tt.items():
        o = ours.get(name)
        if o:
            ref, key = ref_rate(name)
            ob = openblas_rate(name)
            obs = f"{100 * fl / o[0] / ob:.0f}%" if ob == ob else "-"
            print(f"| {name} | {o[0] * 1e3:.2f} | {fl / o[0] / 1e9:.1f} | {100 * fl / o[0] / ref:.0f}% ({key}) | {obs} | "
                  f"{t * 1e3:.2f} | {fl / t / 1e9:.1f} | {t / o[0]:.2f}x |")
        else:
            print(f"| {name} | - | - | - | - | {t * 1e3:.2f} | {fl / t / 1e9:.1f} | - |")


if __name__ == "__main__":
    main()

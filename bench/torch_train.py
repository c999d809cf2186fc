#!/usr/bin/env python3
"""Times one training step of the `train` example's model in PyTorch (issue 11, target 3) and prints
the comparison table against icl's bench/bench_train.cpp (Google Benchmark JSON).

The model is icl's PreLNTransformer<float, 8, H, 4, 4H, 79> (examples/train.cpp) rebuilt from torch
modules: read-in nn.Linear(9, H), a learned position embedding (79 x H, added to every sequence),
L x nn.TransformerEncoderLayer(H, 4, 4H, dropout=0, activation='gelu', batch_first=True,
norm_first=True) with a causal mask, no final LayerNorm, read-out nn.Linear(H, 1): the same
parameter count as icl's model (checked against the "params" counter of icl's JSON). One step, as
icl::train::Trainer::train_step takes it:

  * samples the batch inside the step, like icl: 64 tasks with x ~ N(0, I_8) (40 per task),
    w ~ N(0, I_8), y = <w, x> (no noise), encoded as x-tokens [0; x] and y-tokens [y; 0] and cut to
    the first 2n - 1 = 79 tokens (icl::data::encode, icl::nn::split_prompts);
  * forward, the Eq. 8 loss (squared error of the output at the 40 x-tokens against y, mean over
    the 40 positions and the 64 sequences, icl::nn::icl_loss), backward;
  * clips the total gradient 2-norm to 1 (clip_grad_norm_), sets the learning rate and takes an
    AdamW step with icl's settings (lr 1e-3, betas (0.9, 0.98), eps 1e-9, weight decay 0).

icl also checks loss, gradients and parameters for NaN/Inf in every step (two passes over ~0.2-1.6M
floats); the torch step does not.

Times are the best of --reps repetitions of the mean wall-clock time per step, each repetition at
least --min-time seconds and at least one step (after one warm-up step). PyTorch's thread count is
set with torch.set_num_threads(--threads); run the script under the issue's anchor settings, one
process per thread count, since OpenBLAS reads its environment once:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 \\
        /usr/bin/python3 bench/torch_train.py --threads 1 --json torch_1.json
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 \\
        /usr/bin/python3 bench/torch_train.py --threads 2 --json torch_2.json
    /usr/bin/python3 bench/torch_train.py --table --icl-json icl_train.json \\
        --torch-json torch_1.json torch_2.json

bench/compare_train.sh does all of this (and runs icl_bench_train first) in one invocation.
"""
import argparse
import json
import statistics
import sys

from torch_nn import time_call  # bench/torch_nn.py, next to this script

D, N_EX, HEADS, BATCH = 8, 40, 4, 64
T = 2 * N_EX - 1  # tokens the model sees
T_MAX = 79  # rows of the position embedding (examples/train.cpp: 2 * 40 - 1)
CONFIGS = [(64, 4), (64, 8), (128, 4), (128, 8)]  # (H, L)


def icl_param_count(H, L):
    """Parameters of icl's PreLNTransformer<float, 8, H, 4, 4H, 79> without final norm."""
    F = 4 * H
    block = (4 * H * H + 4 * H) + 2 * (2 * H) + (H * F + F) + (F * H + H)  # MHA, 2 LN, MLP
    return (D + 1) * H + H + T_MAX * H + L * block + H + 1


def build(H, L):
    import torch

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.read_in = torch.nn.Linear(D + 1, H)
            self.pos_embedding = torch.nn.Embedding(T_MAX, H)
            self.blocks = torch.nn.ModuleList([
                torch.nn.TransformerEncoderLayer(H, HEADS, dim_feedforward=4 * H, dropout=0.0, activation="gelu",
                                                 batch_first=True, norm_first=True) for _ in range(L)])
            self.read_out = torch.nn.Linear(H, 1)
            self.register_buffer("mask", torch.triu(torch.full((T, T), float("-inf")), diagonal=1))

        def forward(self, tokens):  # (B, T, D+1) -> (B, T)
            h = self.read_in(tokens) + self.pos_embedding.weight[:T]
            for b in self.blocks:
                h = b(h, src_mask=self.mask)
            return self.read_out(h).squeeze(-1)

    return Model()


def make_step(H, L):
    """Returns (step function, parameter count)."""
    import torch
    torch.manual_seed(0)
    model = build(H, L)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.0)
    params = list(model.parameters())

    def step():
        # a fresh batch, as icl's step samples one (Gaussian x and w, y = <w, x>)
        x = torch.randn(BATCH, N_EX, D)
        w = torch.randn(BATCH, D)
        y = torch.einsum("bnd,bd->bn", x, w)
        prompts = torch.zeros(BATCH, 2 * N_EX, D + 1)
        prompts[:, 0::2, 1:] = x
        prompts[:, 1::2, 0] = y
        tokens = prompts[:, :T]
        opt.zero_grad()
        out = model(tokens)
        loss = ((out[:, 0::2] - y) ** 2).mean()  # Eq. 8: the 40 x-token outputs, mean over B * n
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        for g in opt.param_groups:  # the schedule's learning rate (icl: lr * factor(step))
            g["lr"] = 1e-3
        opt.step()
        return loss.item()

    return step, sum(p.numel() for p in params)


def time_step(step, reps, min_time):
    """Best over `reps` repetitions of the mean wall time per step (>= min_time s and >= 1 step each)."""
    return time_call(step, reps, min_time, reduce=min)


def run_torch(args):
    import torch
    torch.set_num_threads(args.threads)
    res = {"torch": torch.__version__, "threads": torch.get_num_threads(), "configs": {}}
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}", file=sys.stderr)
    for (H, L) in CONFIGS:
        if args.H and H not in args.H or args.L and L not in args.L:
            continue
        step, count = make_step(H, L)
        if count != icl_param_count(H, L):
            sys.exit(f"torch_train.py: H = {H}, L = {L}: {count} parameters, icl's model has {icl_param_count(H, L)}")
        t = time_step(step, args.reps, args.min_time)
        res["configs"][f"H:{H}/L:{L}"] = {"seconds_per_step": t, "steps_per_s": 1.0 / t, "params": count}
        print(f"  torch H={H} L={L} threads={args.threads}: {1.0 / t:.3f} steps/s ({count} parameters)",
              file=sys.stderr)
    out = json.dumps(res, indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(out + "\n")
    else:
        print(out)


def icl_results(path):
    """'H:64/L:4' -> {threads: median steps/s, 'params': count} from icl_bench_train's JSON."""
    with open(path) as f:
        data = json.load(f)
    per, params = {}, {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        name = b.get("run_name", b["name"])  # train_step<64>/L:4/threads:1/real_time
        parts = name.split("/")
        H = int(parts[0].split("<")[1].rstrip(">"))
        L = int(parts[1].split(":")[1])
        thr = int(parts[2].split(":")[1])
        key = f"H:{H}/L:{L}"
        per.setdefault(key, {}).setdefault(thr, []).append(b["steps/s"])
        params[key] = int(b["params"])
    return {k: {**{t: statistics.median(v) for t, v in d.items()}, "params": params[k]} for k, d in per.items()}


def table(args):
    ours = icl_results(args.icl_json)
    theirs = {}
    for p in args.torch_json:
        with open(p) as f:
            r = json.load(f)
        for k, v in r["configs"].items():
            theirs.setdefault(k, {})[r["threads"]] = v
    print("| config (d = 8, n = 40, batch 64, float) | parameters | icl steps/s, 1 thr | icl, 2 thr "
          "| icl 2 thr / 1 thr | PyTorch steps/s, 1 thr | PyTorch, 2 thr | icl / PyTorch, 1 thr | icl / PyTorch, 2 thr |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    fmt = lambda v: "-" if v is None else f"{v:.3g}"
    for (H, L) in CONFIGS:
        key = f"H:{H}/L:{L}"
        o, t = ours.get(key, {}), theirs.get(key, {})
        if o and o["params"] != icl_param_count(H, L):
            sys.exit(f"torch_train.py: icl reports {o['params']} parameters for {key}, "
                     f"the torch model has {icl_param_count(H, L)}")
        i1, i2 = o.get(1), o.get(2)
        t1 = t.get(1, {}).get("steps_per_s")
        t2 = t.get(2, {}).get("steps_per_s")
        ratio = lambda a, b: None if a is None or b is None else a / b
        print(f"| L = {L}, H = {H} | {icl_param_count(H, L)} | {fmt(i1)} | {fmt(i2)} | {fmt(ratio(i2, i1))} | "
              f"{fmt(t1)} | {fmt(t2)} | {fmt(ratio(i1, t1))} | {fmt(ratio(i2, t2))} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--H", type=int, nargs="+", help="only these widths (default: 64 128)")
    ap.add_argument("--L", type=int, nargs="+", help="only these depths (default: 4 8)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--json", help="write the torch times here (default: stdout)")
    ap.add_argument("--table", action="store_true", help="print the table from --icl-json and --torch-json")
    ap.add_argument("--icl-json", help="Google Benchmark JSON of icl_bench_train")
    ap.add_argument("--torch-json", nargs="+", default=[], help="outputs of this script (one per thread count)")
    args = ap.parse_args()
    if args.table:
        if not args.icl_json:
            ap.error("--table needs --icl-json")
        table(args)
    else:
        run_torch(args)


if __name__ == "__main__":
    main()

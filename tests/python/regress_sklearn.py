#!/usr/bin/env python3
"""Cross-check of icl::regress online predictions against numpy and scikit-learn.

icl writes datasets (X, y) as safetensors ([py-regress-write]); for every prefix i this script
refits LinearRegression(fit_intercept=False), numpy.linalg.lstsq, Ridge(alpha, fit_intercept=False)
and KNeighborsRegressor (uniform, and weights = 1/dist^2) on the first i examples and predicts
X[i] (prediction 0 from no examples); it writes the references back and icl compares its
online_predictions ([py-regress-check], tolerance 1e-8 relative, see docs/regress.md §5).
The safetensors reader/writer is numpy only (Debian has no `safetensors` package)."""
import argparse, json, os, shutil, struct, subprocess, sys
import numpy as np
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.neighbors import KNeighborsRegressor

from safetensors_np import read, write  # shared with the other tests


def inverse_square(dist):
    # 1/dist^2; rows with a zero distance use only the zero-distance neighbours (as icl and
    # sklearn's weights='distance' do)
    with np.errstate(divide="ignore"):
        w = 1.0 / dist ** 2
    zero = dist == 0
    rows = zero.any(axis=1)
    w[rows] = zero[rows].astype(float)
    return w


def online(make, X, y):
    n = X.shape[0]
    p = np.zeros(n)
    for i in range(1, n):
        p[i] = make(i).fit(X[:i], y[:i]).predict(X[i:i + 1])[0]
    return p


def lstsq_online(X, y):
    p = np.zeros(X.shape[0])
    for i in range(1, X.shape[0]):
        w = np.linalg.lstsq(X[:i], y[:i], rcond=None)[0]
        p[i] = X[i] @ w
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.dir, ignore_errors=True)
    os.makedirs(a.dir)
    env = dict(os.environ, ICL_PY_DIR=a.dir)

    r = subprocess.run([a.exe, "[py-regress-write]"], env=env)
    if r.returncode != 0:
        sys.exit(f"FAIL: {a.exe} [py-regress-write] exited with {r.returncode}")
    t, meta = read(os.path.join(a.dir, "regress_data.safetensors"))
    count = int(meta["datasets"])
    out = {}
    for k in range(count):
        X, y = t[f"X{k}"].astype(np.float64), t[f"y{k}"].astype(np.float64)
        out[f"ols_sklearn{k}"] = online(lambda i: LinearRegression(fit_intercept=False), X, y)
        out[f"ols_lstsq{k}"] = lstsq_online(X, y)
        for alpha in (0.1, 0.5):
            out[f"ridge{alpha}_{k}"] = online(lambda i: Ridge(alpha=alpha, fit_intercept=False), X, y)
        out[f"knn_uniform{k}"] = online(
            lambda i: KNeighborsRegressor(n_neighbors=min(3, i), weights="uniform", algorithm="brute"), X, y)
        out[f"knn_inverse_square{k}"] = online(
            lambda i: KNeighborsRegressor(n_neighbors=min(3, i), weights=inverse_square, algorithm="brute"), X, y)
    write(os.path.join(a.dir, "regress_reference.safetensors"), out)

    r = subprocess.run([a.exe, "[py-regress-check]"], env=env)
    if r.returncode != 0:
        sys.exit(f"FAIL: icl online predictions differ from numpy/scikit-learn ({a.exe} [py-regress-check] "
                 f"exited with {r.returncode}; see its output above)")
    print(f"OK: {count} datasets, OLS/lstsq/Ridge(0.1, 0.5)/kNN(3, uniform, 1/d^2) agree")


if __name__ == "__main__":
    main()

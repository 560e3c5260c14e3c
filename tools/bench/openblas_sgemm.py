#!/usr/bin/python3
"""OpenBLAS sgemm yardstick: GFLOP/s on the same MLP 784-256-128-10 training shapes as
bench_gemm (forward X*W, weight gradients Xt*dY, input gradients dY*Wt), one thread.

    /usr/bin/python3 tools/bench/openblas_sgemm.py [--batch 64,32] [--seconds 0.3] [--json]

Use Debian's /usr/bin/python3: its python3-numpy links libblas.so.3, which must point at
OpenBLAS (Debian package libopenblas0-pthread; without it numpy silently runs the reference
BLAS, ~10x slower). The script prints which BLAS it found. Each shape warms up, then spends about
--seconds in 5 timed runs; the median run is reported. numpy adds ~1-2 us of call overhead, which
dominates the tiny n=10 / k=10 shapes: read those as "numpy+OpenBLAS", not OpenBLAS alone.
"""

import os

# Must be set before numpy loads OpenBLAS, or its thread pool is already sized.
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

RUNS = 5
WARMUP_FRACTION = 0.2
LAYERS = (784, 256, 128, 10)


def shapes(batch):
    """(name, m, n, k, make) in bench_gemm's order; W is stored in x out, as in Starling."""
    out = []
    for i, o in zip(LAYERS, LAYERS[1:]):
        out.append((f"fwd X*W {i}x{o}", batch, o, i,
                    lambda rng, i=i, o=o: (rng.standard_normal((batch, i)),
                                           rng.standard_normal((i, o)))))
    for i, o in zip(LAYERS, LAYERS[1:]):
        # Xt is a transposed view, so numpy passes trans=T to sgemm without copying.
        out.append((f"dW Xt*dY {i}x{o}", i, o, batch,
                    lambda rng, i=i, o=o: (rng.standard_normal((batch, i)).T,
                                           rng.standard_normal((batch, o)))))
    for i, o in list(zip(LAYERS, LAYERS[1:]))[1:]:
        out.append((f"dX dY*Wt {o}->{i}", batch, i, o,
                    lambda rng, i=i, o=o: (rng.standard_normal((batch, o)),
                                           rng.standard_normal((i, o)).T)))
    return out


def blas_info():
    """The BLAS library numpy loaded, and OpenBLAS's core and config when it is OpenBLAS."""
    info = {"library": None, "core": None, "config": None, "threads": None}
    try:
        from threadpoolctl import threadpool_info  # optional (python3-threadpoolctl)
        for pool in threadpool_info():
            if pool.get("internal_api") == "openblas":
                info.update(library=pool.get("filepath"), core=pool.get("architecture"),
                            config=pool.get("version"), threads=pool.get("num_threads"))
                return info
    except ImportError:
        pass
    with open("/proc/self/maps") as maps:
        libs = sorted({line.split()[-1] for line in maps
                       if "blas" in line and line.rstrip().endswith(tuple("0123456789o"))})
    openblas = [p for p in libs if "openblas" in p and "libopenblas" in os.path.basename(p)]
    info["library"] = openblas[0] if openblas else (libs[0] if libs else None)
    if openblas:
        lib = ctypes.CDLL(openblas[0])
        for name in ("corename", "config"):
            fn = getattr(lib, f"openblas_get_{name}")
            fn.restype = ctypes.c_char_p
            info["core" if name == "corename" else "config"] = fn().decode()
        lib.openblas_get_num_threads.restype = ctypes.c_int
        info["threads"] = lib.openblas_get_num_threads()
    return info


def measure(a, b, c, flops, budget):
    warm_end = time.perf_counter() + budget * WARMUP_FRACTION
    calls = 0
    t0 = time.perf_counter()
    while calls < 3 or time.perf_counter() < warm_end:
        np.dot(a, b, out=c)
        calls += 1
    per_call = (time.perf_counter() - t0) / calls
    n = max(1, int(budget * (1 - WARMUP_FRACTION) / RUNS / per_call))
    runs = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        for _ in range(n):
            np.dot(a, b, out=c)
        runs.append(flops / ((time.perf_counter() - t0) / n) * 1e-9)
    return statistics.median(runs), runs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", default="64,32", help="comma-separated batch sizes")
    ap.add_argument("--seconds", type=float, default=0.3, help="budget per shape (warm-up included)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    batches = [int(b) for b in args.batch.split(",")]

    info = blas_info()
    rng = np.random.default_rng(0)
    results = []
    for batch in batches:
        for name, m, n, k, make in shapes(batch):
            a, b = (x.astype(np.float32) for x in make(rng))
            c = np.empty((m, n), dtype=np.float32)
            np.dot(a, b, out=c)
            ref = a.astype(np.float64) @ b.astype(np.float64)
            assert np.max(np.abs(c - ref)) <= 1e-4 * np.max(np.abs(ref)), name
            flops = 2.0 * m * n * k
            median, runs = measure(a, b, c, flops, args.seconds)
            results.append({"batch": batch, "shape": name, "m": m, "n": n, "k": k,
                            "gflops": round(median, 3), "runs_gflops": [round(r, 3) for r in runs],
                            "seconds_per_call": flops / median * 1e-9})

    if args.json:
        json.dump({"tool": "openblas_sgemm", "numpy": np.__version__, "blas": info,
                   "runs_per_measurement": RUNS, "seconds_per_measurement": args.seconds,
                   "results": results}, sys.stdout, indent=2)
        print()
        return
    print(f"openblas_sgemm: GFLOP/s, median of {RUNS} runs, {args.seconds:.2f} s per shape, "
          f"numpy {np.__version__}, BLAS {info['library']}")
    if info["core"]:
        print(f"  OpenBLAS core {info['core']}, threads {info['threads']}, {info['config']}")
    else:
        print("  WARNING: not OpenBLAS (install libopenblas0-pthread); figures are not the anchor")
    for batch in batches:
        print(f"\nbatch {batch}\n{'shape':<22} {'m':>5} {'n':>5} {'k':>5} {'MFLOP':>9} {'openblas':>9}")
        step_flops = step_seconds = 0.0
        for r in results:
            if r["batch"] != batch:
                continue
            flops = 2.0 * r["m"] * r["n"] * r["k"]
            step_flops += flops
            step_seconds += r["seconds_per_call"]
            print(f"{r['shape']:<22} {r['m']:>5} {r['n']:>5} {r['k']:>5} {flops * 1e-6:>9.3f} "
                  f"{r['gflops']:>9.1f}")
        print(f"{'all GEMMs of a step':<22} {'':>5} {'':>5} {'':>5} {step_flops * 1e-6:>9.3f} "
              f"{step_flops / step_seconds * 1e-9:>9.1f}")
        print(f"{'  GEMM-only samples/s':<22} {'':>5} {'':>5} {'':>5} {'':>9} "
              f"{batch / step_seconds:>9.0f}")


if __name__ == "__main__":
    main()

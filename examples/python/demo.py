#!/usr/bin/env python3
"""The table of `llmq demo`, from Python: quantize LLM-like NumPy matrices under the common
schemes through llmq.py and print bits per value, SQNR, largest error and throughput.

The data follow the same model as the C demo (src/synth.c): Student-t weights (4 degrees of
freedom) with log-normal per-row magnitudes around 0.02, and Gaussian activations with per-token
magnitudes and 6 channels 20 to 100 times larger. They are drawn with NumPy's generator, not the
C tool's, so the numbers agree with `llmq demo` statistically, not digit for digit.

usage: demo.py [--seed N] [--rows R] [--tokens T] [--cols C]     SPDX-License-Identifier: MIT
"""
import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import llmq  # noqa: E402  (the binding next to this file)

# name, activation?, dtype, symmetry, granularity, group size: the rows of `llmq demo`
SCHEMES = [
    ("W8 per-tensor sym", False, "s8", "symmetric", "per_tensor", 0),
    ("W8 per-channel sym", False, "s8", "symmetric", "per_channel", 0),
    ("W4 g128 sym", False, "s4", "symmetric", "per_group", 128),
    ("W4 g128 asym", False, "u4", "asymmetric", "per_group", 128),
    ("W4 g32 asym", False, "u4", "asymmetric", "per_group", 32),
    ("W2 g32 asym", False, "u2", "asymmetric", "per_group", 32),
    ("A8 per-token dynamic sym", True, "s8", "symmetric", "per_token", 0),
    ("A8 per-token dynamic asym", True, "u8", "asymmetric", "per_token", 0),
    ("A8 per-tensor dynamic sym", True, "s8", "symmetric", "per_tensor", 0),
]


def synth_weights(rng, rows, cols):
    row_scale = 0.02 * np.exp(0.5 * rng.standard_normal((rows, 1)))
    return (row_scale * rng.standard_t(4.0, (rows, cols))).astype(np.float32)


def synth_activations(rng, tokens, cols, outliers):
    channels = (rng.random(outliers) * cols).astype(np.int64)
    gains = 20.0 + 80.0 * rng.random(outliers)
    tok_scale = np.exp(0.3 * rng.standard_normal((tokens, 1)))
    x = (tok_scale * rng.standard_normal((tokens, cols))).astype(np.float32)
    for ch, gain in zip(channels, gains):  # in order, like the C demo: a repeat compounds
        x[:, ch] *= np.float32(gain)
    return x


def effective_bits(dtype, symmetry, granularity, group, rows, cols):
    """Bits per value with a float32 scale per parameter set (+ a zero point if asymmetric)."""
    bits = {"s8": 8, "u8": 8, "s4": 4, "u4": 4, "s2": 2, "u2": 2}[dtype]
    per_param = 32 + (bits if symmetry == "asymmetric" else 0)
    params = {"per_tensor": 1, "per_channel": rows, "per_token": rows,
              "per_group": rows * -(-cols // group) if group else 1}[granularity]
    return bits + params * per_param / (rows * cols)


def sqnr_db(ref, got):
    ref, err = ref.astype(np.float64), ref.astype(np.float64) - got.astype(np.float64)
    noise = float(np.sum(err * err))
    max_err = float(np.max(np.abs(err)))
    return (float("inf") if noise == 0 else 10 * np.log10(np.sum(ref * ref) / noise)), max_err


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rows", type=int, default=1024)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--cols", type=int, default=4096)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    w = synth_weights(rng, args.rows, args.cols)
    x = synth_activations(rng, args.tokens, args.cols, 6)

    with llmq.Context() as ctx:
        print(f"llmq demo (Python): weights {args.rows}x{args.cols} (Student-t, per-row "
              f"magnitudes), activations {args.tokens}x{args.cols} (6 outlier channels "
              f"x20-x100); backend {ctx.backend_name}")
        print("bits/value counts a f32 scale per parameter set (+ zero point for asym); "
              "throughput = dynamic quantize, GB/s of f32 input\n")
        print(f"{'scheme':<28} {'bits/val':>9} {'SQNR dB':>10} {'max |err|':>12} {'GB/s':>10}")
        for name, activation, dtype, symmetry, granularity, group in SCHEMES:
            src = x if activation else w
            scheme = llmq.Scheme(ctx, dtype, symmetry=symmetry, granularity=granularity,
                                 group_size=group or None)
            q = llmq.empty_quantized(scheme, src.shape)
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                llmq.quantize_dynamic(src, q)
                best = min(best, time.perf_counter() - t0)
            back = llmq.dequantize(q).numpy()
            sqnr, max_err = sqnr_db(src, back)
            bits = effective_bits(dtype, symmetry, granularity, group, *src.shape)
            print(f"{name:<28} {bits:9.3f} {sqnr:10.2f} {max_err:12.3g} "
                  f"{src.nbytes / best / 1e9:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""llmq's observers against PyTorch's, bit for bit, on random batches.

MinMax / MovingAverage (per tensor and per channel) are PyTorch's own observers. For the
histogram observer, the installed PyTorch may predate the current rules for growing the range,
so the histogram is built here with torch's own float32 ops (histc, linspace, bucketize,
bincount) following the current HistogramObserver, then handed to PyTorch's
HistogramObserver for its L2 search and qparams. Skips (exit 77) without torch.
usage: torch_parity.py CALIB_DUMP"""
import os
import struct
import subprocess
import sys
import tempfile

try:
    import torch
    from torch.ao.quantization import observer as tob
except ImportError:
    print("torch not importable: skipping")
    sys.exit(77)

DUMP = sys.argv[1]
GRIDS = {  # llmq dtype, symmetry -> torch dtype, quant_min, quant_max
    ("s8", "symmetric"): (torch.qint8, -128, 127),
    ("s8", "symmetric_restricted"): (torch.qint8, -127, 127),
    ("s8", "asymmetric"): (torch.qint8, -128, 127),
    ("u8", "asymmetric"): (torch.quint8, 0, 255),
    ("u8", "symmetric"): (torch.quint8, 0, 255),
    ("s4", "symmetric"): (torch.qint8, -8, 7),
    ("u4", "asymmetric"): (torch.quint8, 0, 15),
}


def to_bytes(path, batches):
    with open(path, "wb") as f:
        for b in batches:
            f.write(struct.pack("<i", b.dim()))
            f.write(struct.pack("<%dq" % b.dim(), *b.shape))
            flat = b.contiguous().reshape(-1).tolist()
            f.write(struct.pack("<%df" % len(flat), *flat))


def run_llmq(obs, dtype, sym, gran, axis, batches, key=-1, value=0.0, hist=False):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "batches.bin")
        to_bytes(path, batches)
        args = [DUMP, obs, dtype, sym, gran, str(axis), str(key), repr(value), path]
        if hist:
            args.append("hist")
        p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"calib_dump failed: {' '.join(args)}\n{p.stderr}")
    return [line.split() for line in p.stdout.splitlines()]


def qscheme(sym, per_channel):
    if sym == "asymmetric":
        return torch.per_channel_affine if per_channel else torch.per_tensor_affine
    return torch.per_channel_symmetric if per_channel else torch.per_tensor_symmetric


def f32(x):
    return struct.unpack("<f", struct.pack("<f", float(x)))[0]


def same(name, got, want):
    if got != want:
        sys.exit(f"{name}: llmq {got!r} != torch {want!r}")


def check_rows(label, rows, lo, hi, scale, zp):
    same(label + " count", len(rows), len(scale))
    for p, r in enumerate(rows):
        same(f"{label}[{p}] lo", float.fromhex(r[0]), f32(lo[p]))
        same(f"{label}[{p}] hi", float.fromhex(r[1]), f32(hi[p]))
        same(f"{label}[{p}] scale", float.fromhex(r[2]), f32(scale[p]))
        same(f"{label}[{p}] zero_point", int(r[3]), int(zp[p]))


def random_batches(gen, shapes, kind):
    out = []
    for shape in shapes:
        x = torch.randn(shape, generator=gen)
        if kind == "laplace":
            u = torch.rand(shape, generator=gen) - 0.5
            x = -torch.sign(u) * torch.log1p(-2 * u.abs())
        if kind == "outliers":
            mask = torch.rand(shape, generator=gen) < 0.002
            x = torch.where(mask, x * 40, x)
        scale = float(torch.rand(1, generator=gen)) * 3 + 0.1
        shift = float(torch.randn(1, generator=gen)) * 0.5
        out.append((x * scale + shift).float())
    return out


def minmax_and_moving_average(gen):
    checked = 0
    for (dtype, sym), (tdt, qmin, qmax) in GRIDS.items():
        if dtype == "u8" and sym == "symmetric":
            continue  # PyTorch's per-channel u8 symmetric zero point differs (documented)
        for per_channel in (False, True):
            for moving in (False, True):
                axis = int(torch.randint(0, 2, (1,), generator=gen)) if per_channel else 0
                shapes = [(int(torch.randint(1, 9, (1,), generator=gen)), 6, 5) for _ in range(5)]
                if per_channel and axis == 0:
                    shapes = [(4, 6, 5)] * 5
                batches = random_batches(gen, shapes, "outliers")
                c = 0.25 if moving else 0.0
                kw = dict(dtype=tdt, qscheme=qscheme(sym, per_channel), quant_min=qmin,
                          quant_max=qmax)
                if per_channel:
                    cls = (tob.MovingAveragePerChannelMinMaxObserver if moving
                           else tob.PerChannelMinMaxObserver)
                    kw["ch_axis"] = axis
                else:
                    cls = tob.MovingAverageMinMaxObserver if moving else tob.MinMaxObserver
                if moving:
                    kw["averaging_constant"] = c
                o = cls(**kw)
                for b in batches:
                    o(b)
                scale, zp = o.calculate_qparams()
                lo, hi = o.min_val.reshape(-1).tolist(), o.max_val.reshape(-1).tolist()
                rows = run_llmq("moving_average" if moving else "minmax", dtype, sym,
                                "per_channel" if per_channel else "per_tensor", axis, batches,
                                key=0 if moving else -1, value=c)
                check_rows(f"{cls.__name__} {dtype} {sym} axis={axis}", rows, lo, hi,
                           scale.reshape(-1).tolist(), zp.reshape(-1).tolist())
                checked += 1
    return checked


def scalar_linspace(start, end, steps):
    """torch.linspace as its scalar CPU kernel computes it, in float32: the first half counts
    up from start, the second half down from end. (The vectorized kernel fuses these into
    FMAs over 8 or 16 lanes, depending on the build and CPU, and so differs by an ulp here and
    there; llmq follows the scalar kernel. See docs/calibration.md.)"""
    s, e = torch.tensor(start, dtype=torch.float32), torch.tensor(end, dtype=torch.float32)
    step = (e - s) / (steps - 1)
    idx = torch.arange(steps, dtype=torch.float32)
    up = s + step * idx
    down = e - step * (steps - 1 - idx)
    return torch.where(torch.arange(steps) < steps // 2, up, down)


def reference_histogram(batches, bins=2048, up=16):
    """The current HistogramObserver.forward rules, with torch's float32 ops."""
    hist = mn = mx = None
    for x in batches:
        xmin, xmax = torch.aminmax(x)
        if hist is None:
            hist, mn, mx = torch.histc(x, bins, min=xmin.item(), max=xmax.item()), xmin, xmax
            continue
        nmin, nmax = torch.min(mn, xmin), torch.max(mx, xmax)
        update = torch.histc(x, bins, min=nmin.item(), max=nmax.item())
        if nmin == mn and nmax == mx:
            hist = hist + update
            continue
        if mn == mx:  # a one-value histogram moves whole (with its own total: see the docs)
            moved = torch.histc(mn.reshape(1), bins, min=nmin.item(), max=nmax.item()) * hist.sum()
        else:
            fine = hist.repeat_interleave(up) / up
            size = (mx - mn) / (bins * up)
            mids = scalar_linspace(mn.item(), mx.item(), bins * up + 1)[:-1] + 0.5 * size
            edges = scalar_linspace(nmin.item(), nmax.item(), bins + 1)
            idx = (torch.bucketize(mids, edges, right=True) - 1).clamp(0, bins - 1)
            moved = torch.bincount(idx, weights=fine, minlength=bins)
        hist, mn, mx = (update + moved).float(), nmin, nmax
    return hist, mn, mx


def l2_error(hist, mn, mx, dst_nbins, start, end):
    """HistogramObserver._compute_quantization_error, in float64."""
    h = hist.double()
    bw = (mx - mn) / h.numel()
    dw = bw * (end - start + 1) / dst_nbins
    begin = (torch.arange(h.numel(), dtype=torch.float64) - start) * bw
    stop = begin + bw
    db = torch.clamp(torch.floor(begin / dw), 0, dst_nbins - 1)
    de = torch.clamp(torch.floor(stop / dw), 0, dst_nbins - 1)
    dens = h / bw
    half = dw / 2
    d0 = begin - (db + 0.5) * dw
    d1 = stop - (de * dw + half)
    norm = dens * (half ** 3 - d0 ** 3) / 3 + (de - db - 1) * dens * (2 * half ** 3) / 3 \
        + dens * (d1 ** 3 + half ** 3) / 3
    return norm.sum().item()


def histogram_l2(gen):
    checked, close = 0, 0
    for (dtype, sym), (tdt, qmin, qmax) in GRIDS.items():
        if dtype == "u8" and sym == "symmetric":
            continue
        for kind in ("gauss", "laplace", "outliers"):
            shapes = [(int(torch.randint(50, 400, (1,), generator=gen)), 64) for _ in range(4)]
            batches = random_batches(gen, shapes, kind)
            hist, mn, mx = reference_histogram(batches)
            rows = run_llmq("histogram_l2", dtype, sym, "per_tensor", 0, batches, hist=True)
            edges, counts = rows[0], [float.fromhex(r[0]) for r in rows[1:2049]]
            same("edges", (float.fromhex(edges[0]), float.fromhex(edges[1])),
                 (f32(mn), f32(mx)))
            worst = max(abs(a - b) for a, b in zip(counts, hist.tolist()))
            if worst > 1e-6 * max(1.0, max(counts)):
                sys.exit(f"histogram {dtype} {sym} {kind}: a bin differs by {worst}")
            o = tob.HistogramObserver(bins=2048, dtype=tdt, qscheme=qscheme(sym, False),
                                      quant_min=qmin, quant_max=qmax)
            o.dst_nbins = 2 ** (4 if dtype.endswith("4") else 8)
            o.histogram = hist
            o.min_val, o.max_val = mn.clone(), mx.clone()
            new_min, new_max = o._non_linear_param_search()
            scale, zp = o._calculate_qparams(new_min, new_max)
            got = rows[2049:]
            try:
                check_rows(f"HistogramObserver {dtype} {sym} {kind}", got, [new_min], [new_max],
                           scale.tolist(), zp.tolist())
                checked += 1
            except SystemExit as e:
                # PyTorch evaluates the L2 errors in float32 (cubes of nearby numbers, then a
                # sum) and stops at the first increase; where the error curve is flat to that
                # noise (about 1e-4 relative), its path may stop a few bins from llmq's
                # (double). Accept only stops whose exact (float64) error is lower than
                # PyTorch's, or equal to within that noise.
                width = (mx.item() - mn.item()) / 2048
                lo, hi = float.fromhex(got[0][0]), float.fromhex(got[0][1])
                ours = (round((lo - mn.item()) / width), round((hi - mn.item()) / width) - 1)
                theirs = (round((new_min.item() - mn.item()) / width),
                          round((new_max.item() - mn.item()) / width) - 1)
                e_ours = l2_error(hist, mn.item(), mx.item(), o.dst_nbins, *ours)
                e_theirs = l2_error(hist, mn.item(), mx.item(), o.dst_nbins, *theirs)
                if e_ours > e_theirs * (1 + 1e-4):
                    raise
                print(f"near tie: {e} (bins {ours} vs {theirs}, L2 {e_ours:.7g} vs {e_theirs:.7g})")
                close += 1
    return checked, close


def main():
    gen = torch.Generator().manual_seed(1234)
    n = minmax_and_moving_average(gen)
    print(f"MinMax/MovingAverage (per tensor, per channel): {n} configurations bit-exact")
    exact, close = histogram_l2(gen)
    print(f"HistogramObserver: histograms match; qparams bit-exact in {exact}, "
          f"float32-noise ties (llmq no worse) in {close}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

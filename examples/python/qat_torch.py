#!/usr/bin/env python3
"""llmq's fake quantization as a torch.autograd.Function, through ctypes.

llmq_fake_quantize / llmq_fake_quantize_backward are wrapped once (class Llmq), then used
  1. against a NumPy transcription of PyTorch's formulas (needs NumPy only), and
  2. as a torch.autograd.Function (LlmqFakeQuantize), compared with PyTorch's own
     fake_quantize_per_tensor_affine, fake_quantize_per_channel_affine and the learnable
     (LSQ) _fake_quantize_learnable_per_tensor_affine / _per_channel_affine, forward and
     backward (needs torch).
What is missing is skipped with a line saying why. The library is found through $LLMQ_LIB
(a path to libllmq.so.0), else in the build directories next to this source tree.

usage: qat_torch.py [--skip-exit-code N]   (N: exit status when everything was skipped)
SPDX-License-Identifier: MIT
"""
import argparse
import ctypes
import os
import pathlib
import sys

# llmq enum values (include/llmq/*.h)
F32, F16, S8, U8, S4, U4, S32 = 0, 1, 3, 4, 5, 6, 9
SYMMETRIC, ASYMMETRIC = 0, 2
PER_TENSOR, PER_CHANNEL, PER_GROUP = 0, 1, 2


def find_library():
    env = os.environ.get("LLMQ_LIB")
    if env:
        return env
    root = pathlib.Path(__file__).resolve().parents[2]
    for build in sorted(root.glob("build*")):
        lib = build / "lib" / "libllmq.so.0"
        if lib.exists():
            return str(lib)
    return "libllmq.so.0"  # the system's search path


class LlmqError(RuntimeError):
    pass


class Llmq:
    """A context of libllmq and the few calls fake quantization needs."""

    def __init__(self, path):
        import numpy as np

        self.np = np
        lib = self.lib = ctypes.CDLL(path)
        vp, i32, i64, f32 = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64, ctypes.c_float
        sigs = {
            "llmq_context_create": [ctypes.POINTER(vp), ctypes.c_char_p],
            "llmq_context_destroy": [vp],
            "llmq_context_last_error": [vp],
            "llmq_status_name": [ctypes.c_int],
            "llmq_tensor_wrap": [vp, ctypes.c_int, i32, ctypes.POINTER(i64), vp, ctypes.c_size_t,
                                 ctypes.POINTER(vp)],
            "llmq_tensor_destroy": [vp],
            "llmq_scheme_create": [vp, ctypes.c_int, ctypes.POINTER(vp)],
            "llmq_scheme_destroy": [vp],
            "llmq_scheme_set_symmetry": [vp, ctypes.c_int],
            "llmq_scheme_set_granularity": [vp, ctypes.c_int],
            "llmq_scheme_set_axis": [vp, i32],
            "llmq_scheme_set_group_size": [vp, i64],
            "llmq_scheme_set_range": [vp, i32, i32],
            "llmq_fake_quantize": [vp, vp, vp, vp, vp, vp],
            "llmq_fake_quantize_backward": [vp, vp, vp, vp, vp, vp, f32, vp, vp, vp],
        }
        for name, args in sigs.items():
            fn = getattr(lib, name)
            fn.argtypes = args
            fn.restype = ctypes.c_int
        lib.llmq_context_destroy.restype = None
        lib.llmq_tensor_destroy.restype = None
        lib.llmq_scheme_destroy.restype = None
        lib.llmq_context_last_error.restype = ctypes.c_char_p
        lib.llmq_status_name.restype = ctypes.c_char_p
        self.ctx = vp()
        self._check(lib.llmq_context_create(ctypes.byref(self.ctx), b"cpu"))

    def close(self):
        self.lib.llmq_context_destroy(self.ctx)
        self.ctx = None

    def _check(self, status):
        if status != 0:
            name = self.lib.llmq_status_name(status).decode()
            raise LlmqError(f"{name}: {self.lib.llmq_context_last_error(self.ctx).decode()}")

    def scheme(self, dtype, symmetry, granularity, axis=0, group=0, qrange=None):
        """A scheme handle (free it with scheme_destroy)."""
        s = ctypes.c_void_p()
        self._check(self.lib.llmq_scheme_create(self.ctx, dtype, ctypes.byref(s)))
        try:
            self._check(self.lib.llmq_scheme_set_symmetry(s, symmetry))
            self._check(self.lib.llmq_scheme_set_granularity(s, granularity))
            self._check(self.lib.llmq_scheme_set_axis(s, axis))
            if group:
                self._check(self.lib.llmq_scheme_set_group_size(s, group))
            if qrange is not None:
                self._check(self.lib.llmq_scheme_set_range(s, *qrange))
        except LlmqError:
            self.lib.llmq_scheme_destroy(s)
            raise
        return s

    def scheme_destroy(self, s):
        self.lib.llmq_scheme_destroy(s)

    def _wrap(self, arr, keep):
        """A tensor viewing a C-contiguous NumPy array (float32, float16 or int32)."""
        if arr is None:
            return None
        np = self.np
        dtype = {np.dtype(np.float32): F32, np.dtype(np.float16): F16,
                 np.dtype(np.int32): S32}[arr.dtype]
        assert arr.flags.c_contiguous
        shape = (ctypes.c_int64 * max(arr.ndim, 1))(*(arr.shape or (1,)))
        t = ctypes.c_void_p()
        self._check(self.lib.llmq_tensor_wrap(self.ctx, dtype, max(arr.ndim, 1), shape,
                                              arr.ctypes.data, 0, ctypes.byref(t)))
        keep.append(t)
        return t

    def _release(self, keep):
        for t in keep:
            self.lib.llmq_tensor_destroy(t)

    def fake_quantize(self, x, scheme, scale, zero_point=None):
        """y = (clamp(round(x / scale) + zp, qmin, qmax) - zp) * scale, as a new array."""
        y = self.np.empty_like(x)
        keep = []
        try:
            args = [self._wrap(a, keep) for a in (x, scale, zero_point, y)]
            self._check(self.lib.llmq_fake_quantize(self.ctx, args[0], scheme, args[1], args[2],
                                                    args[3]))
        finally:
            self._release(keep)
        return y

    def fake_quantize_backward(self, x, scheme, scale, zero_point, dy, grad_factor=1.0,
                               want_scale=True, want_zero_point=True):
        """(dx, dscale or None, dzero_point or None)."""
        np = self.np
        dx = np.empty_like(dy)
        ds = np.empty(scale.shape, np.float32) if want_scale else None
        dz = np.empty(scale.shape, np.float32) if want_zero_point and zero_point is not None \
            else None
        keep = []
        try:
            t = [self._wrap(a, keep) for a in (x, scale, zero_point, dy, dx, ds, dz)]
            self._check(self.lib.llmq_fake_quantize_backward(
                self.ctx, t[0], scheme, t[1], t[2], t[3], grad_factor, t[4], t[5], t[6]))
        finally:
            self._release(keep)
        return dx, ds, dz


# ---------------------------------------------------------------------------------------------
# 1. NumPy: PyTorch's formulas written out (docs/qat.md), element by element


def numpy_reference(np, x, scale, zp, qmin, qmax, axis, dy, grad_factor):
    """Forward, dx, dscale, dzero_point of a per-tensor (axis None) or per-channel scheme."""
    shape = [1] * x.ndim
    if axis is not None:
        shape[axis] = -1
    s = scale.reshape(shape).astype(np.float32)
    z = np.clip(np.rint(zp.astype(np.float32)), qmin, qmax).reshape(shape)
    inv = (np.float32(1.0) / s).astype(np.float32)
    q = np.rint((x * inv).astype(np.float32)) + z
    inside = (q >= qmin) & (q <= qmax)
    qc = np.clip(q, qmin, qmax)
    y = ((qc - z) * s).astype(np.float32)
    dx = (dy * inside).astype(np.float32)
    gf = np.float32(grad_factor)
    xfq = ((qc - z) * s).astype(np.float32)
    t_in = ((dy * (xfq - x)).astype(np.float32) * inv).astype(np.float32) * gf
    t_out = (dy * np.where(q < qmin, np.float32(qmin) - z, np.float32(qmax) - z)).astype(
        np.float32) * gf
    ts = np.where(inside, t_in, t_out).astype(np.float64)
    tz = np.where(inside, 0.0, (-dy * s).astype(np.float32) * gf).astype(np.float64)
    red = tuple(i for i in range(x.ndim) if axis is None or i != axis)
    return y, dx, ts.sum(axis=red).reshape(scale.shape), tz.sum(axis=red).reshape(scale.shape)


def check_numpy(llmq, np):
    rng = np.random.default_rng(0)
    cases = 0
    for dtype, qmin, qmax, qrange in ((U8, 0, 255, None), (S8, -128, 127, None),
                                      (S4, -4, 3, (-4, 3)), (U8, 0, 15, (0, 15))):
        for axis in (None, 0, 1):
            x = (rng.standard_normal((6, 40)) * 3).astype(np.float32)
            dy = rng.standard_normal((6, 40)).astype(np.float32)
            n = 1 if axis is None else x.shape[axis]
            scale = rng.uniform(4.0 / (qmax - qmin), 12.0 / (qmax - qmin), n).astype(np.float32)
            zp = rng.uniform(qmin - 1, qmax + 1, n).astype(np.float32)
            gran = PER_TENSOR if axis is None else PER_CHANNEL
            s = llmq.scheme(dtype, ASYMMETRIC, gran, axis or 0, qrange=qrange)
            try:
                y = llmq.fake_quantize(x, s, scale, zp)
                dx, ds, dz = llmq.fake_quantize_backward(x, s, scale, zp, dy, 0.25)
            finally:
                llmq.scheme_destroy(s)
            ry, rdx, rds, rdz = numpy_reference(np, x, scale, zp, qmin, qmax, axis, dy, 0.25)
            assert np.array_equal(y, ry), ("forward", dtype, axis)
            assert np.array_equal(dx, rdx), ("dx", dtype, axis)
            assert np.allclose(ds, rds, rtol=1e-5, atol=1e-5), ("dscale", dtype, axis, ds, rds)
            assert np.allclose(dz, rdz, rtol=1e-5, atol=1e-5), ("dzero_point", dtype, axis)
            cases += 1
    # misuse reaches Python as an exception with llmq's message
    s = llmq.scheme(S8, SYMMETRIC, PER_CHANNEL, 0)
    try:
        llmq.fake_quantize(np.zeros((2, 3), np.float32), s, np.ones(3, np.float32))
        raise AssertionError("a wrongly shaped scale was accepted")
    except LlmqError as e:
        assert "scale=[3]: the scheme's parameters for x=[2, 3] are shaped [2]" in str(e), e
    finally:
        llmq.scheme_destroy(s)
    print(f"numpy: llmq matches PyTorch's formulas in {cases} cases (forward bit-exact)")


# ---------------------------------------------------------------------------------------------
# 2. torch: an autograd.Function, compared with PyTorch's fake-quant functions


def make_function(torch, llmq):
    np = llmq.np

    class LlmqFakeQuantize(torch.autograd.Function):
        """y = fake_quantize(x) with llmq; gradients for x, scale and (float) zero point.

        scheme: an llmq scheme handle; zero_point: None, an int32 tensor (fixed) or a float32
        tensor (learnable, as in LSQ)."""

        @staticmethod
        def forward(ctx, x, scale, zero_point, scheme, grad_factor):
            ctx.save_for_backward(x, scale, zero_point)
            ctx.scheme, ctx.grad_factor = scheme, grad_factor
            zp = None if zero_point is None else zero_point.detach().cpu().numpy()
            y = llmq.fake_quantize(x.detach().cpu().contiguous().numpy(), scheme,
                                   scale.detach().cpu().numpy(), zp)
            return torch.from_numpy(y).to(x.device)

        @staticmethod
        def backward(ctx, dy):
            x, scale, zero_point = ctx.saved_tensors
            zp = None if zero_point is None else zero_point.detach().cpu().numpy()
            learn_zp = zero_point is not None and zero_point.dtype == torch.float32
            dx, ds, dz = llmq.fake_quantize_backward(
                x.detach().cpu().contiguous().numpy(), ctx.scheme, scale.detach().cpu().numpy(),
                zp, dy.detach().cpu().contiguous().numpy().astype(np.float32), ctx.grad_factor,
                want_scale=ctx.needs_input_grad[1], want_zero_point=learn_zp)
            to = lambda a: None if a is None else torch.from_numpy(a).to(x.device)
            return to(dx), to(ds), to(dz) if learn_zp else None, None, None

    return LlmqFakeQuantize


def check_torch(torch, llmq):
    fq = make_function(torch, llmq).apply
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(8, 50, generator=gen) * 3
    dy = torch.randn(8, 50, generator=gen)
    results = []

    def grads(fn, leaves):
        for t in leaves:
            t.grad = None
        fn().backward(dy)
        return [t.grad.clone() for t in leaves]

    def compare(name, qmin, qmax, scheme, torch_fn, scale, zero_point, gf=1.0):
        """torch_fn(x, scale, zero_point) against llmq under scheme (which is freed): the
        forward and dx exactly, the parameters' gradients (if they require them) closely."""
        try:
            x = x0.clone().requires_grad_(True)
            leaves = [x] + [t for t in (scale, zero_point) if t.requires_grad]
            f_t = lambda: torch_fn(x, scale, zero_point)
            f_l = lambda: fq(x, scale, zero_point, scheme, gf)
            fwd = torch.equal(f_t(), f_l())
            g_t, g_l = grads(f_t, leaves), grads(f_l, leaves)
        finally:
            llmq.scheme_destroy(scheme)
        bwd = torch.equal(g_t[0], g_l[0]) and all(
            torch.allclose(a, b, rtol=1e-4, atol=1e-4) for a, b in zip(g_t[1:], g_l[1:]))
        results.append((name, qmin, qmax, fwd, bwd))

    # fixed parameters, integer zero points: per tensor and per channel
    for qmin, qmax, dtype, qrange in ((0, 255, U8, None), (-128, 127, S8, None),
                                      (-8, 7, S8, (-8, 7)), (0, 15, U4, None)):
        scale, zp = 6.0 / (qmax - qmin), (qmin + qmax + 1) // 2
        compare("per-tensor", qmin, qmax, llmq.scheme(dtype, ASYMMETRIC, PER_TENSOR, qrange=qrange),
                lambda x, s, z: torch.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax),
                torch.tensor([scale]), torch.tensor([zp], dtype=torch.int32))
        compare("per-channel", qmin, qmax,
                llmq.scheme(dtype, ASYMMETRIC, PER_CHANNEL, 0, qrange=qrange),
                lambda x, s, z: torch.fake_quantize_per_channel_affine(x, s, z, 0, qmin, qmax),
                torch.linspace(3.0, 9.0, 8) / (qmax - qmin),
                torch.arange(8, dtype=torch.int32) % (qmax - qmin + 1) + qmin)

    # learnable (LSQ): float scale and zero point. PyTorch's per-tensor backward rounds the zero
    # point as trunc(z + 0.5) (docs/qat.md), which equals llmq's rule for z >= 0 off the ties:
    # the per-tensor case keeps z there.
    gf = 0.5
    for qmin, qmax, dtype in ((0, 255, U8), (-128, 127, S8), (0, 15, U4)):
        compare("learnable per-tensor", qmin, qmax, llmq.scheme(dtype, ASYMMETRIC, PER_TENSOR),
                lambda x, s, z: torch._fake_quantize_learnable_per_tensor_affine(
                    x, s, z, qmin, qmax, gf),
                torch.tensor([7.0 / (qmax - qmin)], requires_grad=True),
                torch.tensor([abs(qmin + qmax) / 2 + 0.3], requires_grad=True), gf)
        compare("learnable per-channel", qmin, qmax,
                llmq.scheme(dtype, ASYMMETRIC, PER_CHANNEL, 1),
                lambda x, s, z: torch._fake_quantize_learnable_per_channel_affine(
                    x, s, z, 1, qmin, qmax, gf),
                (torch.linspace(3.0, 9.0, 50) / (qmax - qmin)).requires_grad_(True),
                torch.linspace(qmin - 2.0, qmax + 2.0, 50).requires_grad_(True), gf)

    print(f"torch {torch.__version__}: llmq vs PyTorch's fake-quant functions")
    print("| function | qmin | qmax | forward equal | gradients equal |")
    print("| --- | --- | --- | --- | --- |")
    for name, lo, hi, fwd, bwd in results:
        print(f"| {name} | {lo} | {hi} | {'yes' if fwd else 'NO'} | {'yes' if bwd else 'NO'} |")
    assert all(r[3] and r[4] for r in results), "llmq and PyTorch disagree"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-exit-code", type=int, default=0,
                    help="exit status when nothing could run (77 for meson's SKIP)")
    args = ap.parse_args()
    try:
        import numpy as np
    except ImportError:
        print("skipped: NumPy is not installed (python3-numpy)")
        return args.skip_exit_code
    path = find_library()
    try:
        llmq = Llmq(path)
    except OSError as e:
        print(f"skipped: cannot load libllmq ({e}); set LLMQ_LIB to libllmq.so.0")
        return args.skip_exit_code
    try:
        check_numpy(llmq, np)
        try:
            import torch
        except ImportError:
            print("skipped the comparison with PyTorch: torch is not installed")
            return 0
        check_torch(torch, llmq)
    finally:
        llmq.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

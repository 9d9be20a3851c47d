#!/usr/bin/env python3
"""The llmq tool: --version, info, demo, bench argument checks, unknown commands."""
import subprocess
import sys

llmq, version = sys.argv[1], sys.argv[2]


def run(*args, code=0):
    p = subprocess.run([llmq, *args], capture_output=True, text=True, timeout=120)
    if p.returncode != code:
        sys.exit(f"llmq {' '.join(args)}: exit {p.returncode}, expected {code}\n{p.stdout}{p.stderr}")
    return p.stdout + p.stderr


assert run("--version").strip() == f"llmq {version}"
info = run("info")
for key in ("backend: c", "cpu tier used: ", "cpu tier of this host: ", "backends: cpu",
            "cuda archs: "):
    assert key in info, (key, info)
p = subprocess.run([llmq, "info", "--backend", "cuda"], capture_output=True, text=True, timeout=120)
if p.returncode == 0:  # a machine with a CUDA device and the module
    assert "backend: cuda-sm" in p.stdout, p.stdout
else:
    err = p.stdout + p.stderr
    assert p.returncode == 1 and "LLMQ_ERR_UNSUPPORTED" in err and "backend=cuda" in err, err
demo = run("demo")
rows = [l for l in demo.splitlines() if l.startswith(("W", "A"))]
assert len(rows) == 9, demo
# columns: scheme, bits/value, SQNR, max error, GB/s; W8 per-channel beats W8 per-tensor
sqnr = {" ".join(l.split()[:-4]): float(l.split()[-3]) for l in rows}
assert sqnr["W8 per-channel sym"] > sqnr["W8 per-tensor sym"] + 6, sqnr
assert sqnr["W4 g32 asym"] > sqnr["W4 g128 asym"] > sqnr["W2 g32 asym"], sqnr
assert sqnr["A8 per-token dynamic sym"] > sqnr["A8 per-tensor dynamic sym"], sqnr
# static (each observer) vs dynamic on held-out LLM-like activations: columns 8-bit, 4-bit
calib = {" ".join(l.split()[:-2]): [float(v) for v in l.split()[-2:]]
         for l in demo.splitlines() if l.startswith(("static ", "dynamic "))}
assert len(calib) == 10, demo
assert calib["dynamic per-token"][0] > calib["dynamic per-tensor"][0] + 3, calib
assert calib["static per-channel minmax"][0] > calib["static minmax"][0] + 6, calib
table = run("demo", "observers")
rows = [l for l in table.splitlines() if l.startswith(("| static", "| dynamic"))]
assert len(rows) == 8 and all(len(r.split("|")) == 9 for r in rows), table
obs = run("bench", "observe", "--rows", "64", "--cols", "256", "--reps", "1")
assert len([l for l in obs.splitlines() if "memcpy" in l]) == 7, obs
run("bench", "observe", "--rows", "0", code=2)
run("demo", "observers", "--frob", code=2)
run("bench", "quantize", "--rows", "0", code=2)
qat = run("bench", "qat", "--rows", "8", "--cols", "300", "--reps", "1")
assert len([l for l in qat.splitlines() if "scalar" in l and "s4" in l]) == 4, qat
run("bench", "qat", "--rows", "0", code=2)
run("bench", "gemm", "--reps", "0", code=2)
run("bench", "gemm", "--frobnicate", code=2)
run("bench", "nothing", code=2)
run("frobnicate", code=2)
run(code=2)
print("cli ok")

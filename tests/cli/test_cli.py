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
for key in ("backend: cpu-", "cpu tier used: ", "cpu tier of this host: ", "backends: cpu",
            "cuda archs: "):
    assert key in info, (key, info)
err = run("info", "--backend", "cuda", code=1)
assert "LLMQ_ERR_UNSUPPORTED" in err and "backend=cuda" in err, err
demo = run("demo")
rows = [l for l in demo.splitlines() if l.startswith(("W", "A"))]
assert len(rows) == 9, demo
# columns: scheme, bits/value, SQNR, max error, GB/s; W8 per-channel beats W8 per-tensor
sqnr = {" ".join(l.split()[:-4]): float(l.split()[-3]) for l in rows}
assert sqnr["W8 per-channel sym"] > sqnr["W8 per-tensor sym"] + 6, sqnr
assert sqnr["W4 g32 asym"] > sqnr["W4 g128 asym"] > sqnr["W2 g32 asym"], sqnr
assert sqnr["A8 per-token dynamic sym"] > sqnr["A8 per-tensor dynamic sym"], sqnr
run("bench", "quantize", "--rows", "0", code=2)
run("bench", "gemm", "--reps", "0", code=2)
run("bench", "gemm", "--frobnicate", code=2)
run("bench", "nothing", code=2)
run("frobnicate", code=2)
run(code=2)
print("cli ok")

#!/usr/bin/env python3
"""llmq plan end to end on a small model written here: the table, the budget, the recipe it
writes (read back by `llmq recipe check`), and its errors, which leave no output."""
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

llmq = sys.argv[1]


def run(*args, code=0):
    p = subprocess.run([llmq, *args], capture_output=True, text=True, timeout=120)
    if p.returncode != code:
        sys.exit(f"llmq {' '.join(args)}: exit {p.returncode}, expected {code}\n"
                 f"{p.stdout}{p.stderr}")
    return p.stdout + p.stderr


def write_st(path, tensors):
    header, blob = {}, b""
    for name, (shape, vals) in tensors.items():
        header[name] = {"dtype": "F32", "shape": shape,
                        "data_offsets": [len(blob), len(blob) + 4 * len(vals)]}
        blob += struct.pack("<%df" % len(vals), *vals)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + blob)


rng = random.Random(5)
shapes = {"tok_embeddings.weight": [16, 32], "layers.0.attention.wq.weight": [32, 32],
          "layers.0.feed_forward.w1.weight": [48, 32], "layers.0.feed_forward.w2.weight": [32, 48],
          "norm.weight": [32], "output.weight": [16, 32]}
model = {n: (s, [rng.gauss(0, 1) * (5 if i % 23 == 0 else 1)
                 for i in range(s[0] * (s[1] if len(s) > 1 else 1))])
         for n, s in shapes.items()}
planned = ["layers.0.attention.wq.weight", "layers.0.feed_forward.w1.weight",
           "layers.0.feed_forward.w2.weight"]
# inputs for two of the three matrices: w2 falls back to its weight error
calib = {n + ".input": ([64, 32], [rng.gauss(0, 1) for _ in range(64 * 32)]) for n in planned[:2]}
scheme_text = {"w8": "s8 sym per-channel", "w4g32": "u4 asym per-group32",
               "w4g128": "u4 asym per-group128"}

with tempfile.TemporaryDirectory() as tmp:
    m, c = os.path.join(tmp, "m.safetensors"), os.path.join(tmp, "c.safetensors")
    write_st(m, model)
    write_st(c, calib)
    out = os.path.join(tmp, "plan.yaml")
    text = run("plan", "--model", m, "--calib", c, "--budget", "7", "--candidates",
               "w8,w4g32,w4g128", "-o", out)
    rows = {l.split()[0]: l.split() for l in text.splitlines() if l.startswith("layers.")}
    assert sorted(rows) == sorted(planned), text
    assert [rows[n][5] for n in planned] == ["inputs", "inputs", "weights"], text
    bits = [l for l in text.splitlines() if l.startswith("bits per weight:")]
    assert len(bits) == 1 and "of a budget of 7.0000" in bits[0] and "(exact)" in bits[0], text
    assert float(bits[0].split()[3]) <= 7, bits
    assert "2 matrices kept in float" in text, text
    # the recipe gives each planned matrix its scheme; the others stay float
    chk = run("recipe", "check", out, "--model", m)
    assert "valid, 3 rules" in chk, chk
    for line in chk.splitlines():
        name = line.split()[0]
        if name in rows:
            assert "weights " + scheme_text[rows[name][1]] in line, (line, rows[name])
        elif name in shapes:
            assert "defaults  weights float" in line, line
    # a mix: the budget lies between the all-w4g128 and the all-w8 costs
    assert len({rows[n][1] for n in planned}) >= 2, text

    # without --calib every error is a weight error; --keep-float "" plans every matrix
    text = run("plan", "--model", m, "--budget", "6", "--candidates", "w4g32,w2g32", "-o", out,
               "--keep-float", "", "--objective", "size")
    rows = [l.split() for l in text.splitlines() if l.endswith(("inputs", "weights"))]
    assert len(rows) == 5 and all(r[5] == "weights" for r in rows), text
    assert "0 matrices kept in float" in text, text

    # errors: usage (2), bad input (1); nothing is written
    os.unlink(out)
    err = run("plan", "--model", m, "--budget", "5", "--candidates", "w4g32,w5", "-o", out,
              code=1)
    assert '"w5": expected w<bits>[g<group>][s|a]' in err, err
    err = run("plan", "--model", os.path.join(tmp, "missing.bin"), "--budget", "5",
              "--candidates", "w8", "-o", out, code=1)
    assert "LLMQ_ERR_IO" in err and "missing.bin" in err, err
    err = run("plan", "--model", m, "--calib", os.path.join(tmp, "nope"), "--budget", "5",
              "--candidates", "w8", "-o", out, code=1)
    assert "LLMQ_ERR_IO" in err, err
    for budget in ("0", "-1", "33", "4x", "nan", ""):
        err = run("plan", "--model", m, "--budget", budget, "--candidates", "w8", "-o", out,
                  code=2)
        assert "must be a number of bits per weight in (0, 32]" in err, err
    err = run("plan", "--model", m, "--budget", "4.5", "--candidates", "w8,w4g32", "-o", out,
              code=1)
    assert "below the cheapest assignment of these candidates, 6.2500" in err, err
    err = run("plan", "--model", m, "--budget", "5", "--candidates", "w8", code=2)
    assert "are required" in err and "usage: llmq plan" in err, err
    run("plan", "--model", m, "--budget", "5", "--candidates", "w8", "-o", out, "--frob", "1",
        code=2)
    run("plan", "--model", m, "--budget", "5", "--candidates", "w8", "-o", out, "--objective",
        "max", code=2)
    err = run("plan", "--model", m, "--budget", "16", "--candidates", "w8", "-o",
              os.path.join(tmp, "no-dir", "plan.yaml"), code=1)
    assert "LLMQ_ERR_IO" in err and "no-dir/plan.yaml" in err, err
    assert sorted(os.listdir(tmp)) == ["c.safetensors", "m.safetensors"], os.listdir(tmp)
print("plan ok")

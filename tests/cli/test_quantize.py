#!/usr/bin/env python3
"""llmq quantize / inspect / recipe check end to end: a real model through a recipe, read back
by llmq; failures (unwritable output, corrupt input, bad recipe) leave no output file."""
import os
import subprocess
import sys
import tempfile

llmq, recipes, models = sys.argv[1], sys.argv[2], sys.argv[3]
model = os.path.join(models, "stories260K", "stories260K.bin")


def run(*args, code=0):
    p = subprocess.run([llmq, *args], capture_output=True, text=True, timeout=300)
    if p.returncode != code:
        sys.exit(f"llmq {' '.join(args)}: exit {p.returncode}, expected {code}\n"
                 f"{p.stdout}{p.stderr}")
    return p.stdout + p.stderr


with tempfile.TemporaryDirectory() as tmp:
    src = model
    if not os.path.exists(model):  # no shared models: a small safetensors file made here
        print("../shared/models absent: using the fuzz corpus' valid file")
        src = os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "safetensors",
                           "tiny.llama2c")
    out = os.path.join(tmp, "q.safetensors")
    report = os.path.join(tmp, "report.yaml")
    text = run("quantize", "--recipe", os.path.join(recipes, "w4a16-g128.yaml"), src, "-o", out,
               "--report", report)
    assert "total:" in text and os.path.exists(out), text
    assert sorted(os.listdir(tmp)) == ["q.safetensors", "report.yaml"], os.listdir(tmp)
    rep = open(report).read()
    assert rep.startswith("version: 1\ntensors:\n") and "sqnr_db:" in rep, rep
    # quantized weights come back with their scheme; skipped ones stay f32
    ins = run("inspect", out)
    assert '"dtype":"u4"' in ins and "llmq.format = 1" in ins, ins
    assert "tok_embeddings.weight" in ins and "F32" in ins, ins
    # the rule table of `recipe check`
    chk = run("recipe", "check", os.path.join(recipes, "mixed.yaml"), "--model", src)
    assert "valid, 3 rules" in chk and "skip" in chk, chk
    # quantizing an llmq output again is refused
    err = run("quantize", "--recipe", os.path.join(recipes, "w8a8.yaml"), out, "-o",
              os.path.join(tmp, "again.safetensors"), code=1)
    assert "already quantized" in err, err

    # failures leave no output: an unwritable directory, a corrupt input, a bad recipe
    err = run("quantize", "--recipe", os.path.join(recipes, "w8a8.yaml"), src, "-o",
              "/proc/llmq-no-such-dir/out.safetensors", code=1)
    assert "cannot create a file beside it" in err, err
    corrupt = os.path.join(tmp, "corrupt.safetensors")
    with open(corrupt, "wb") as f:
        f.write((40).to_bytes(8, "little") + b'{"a":{"dtype":"F32","shape":[9],"data_offsets":[0,4]}}')
    bad_out = os.path.join(tmp, "bad.safetensors")
    err = run("quantize", "--recipe", os.path.join(recipes, "w8a8.yaml"), corrupt, "-o", bad_out,
              code=1)
    assert "LLMQ_ERR_PARSE" in err, err
    bad_recipe = os.path.join(tmp, "bad.yaml")
    with open(bad_recipe, "w") as f:
        f.write("version: 1\ndefaults:\n  weight: {bits: 5}\n")
    err = run("quantize", "--recipe", bad_recipe, src, "-o", bad_out, code=1)
    assert "bad.yaml:3:18: defaults.weight.bits: 5: must be 2, 3, 4 or 8" in err, err
    leftovers = [f for f in os.listdir(tmp) if f.startswith("bad.safetensors")]
    assert not leftovers, leftovers
    run("quantize", "--recipe", bad_recipe, code=2)

    # static activations: calibrated from recorded inputs, stored as <weight>.input
    import json
    import random
    import struct
    rng = random.Random(3)
    weights = {"a.weight": (4, 6), "b.weight": (3, 6)}
    header, data = {}, b""
    for name, (rows, cols) in weights.items():
        vals = [rng.uniform(-1, 1) for _ in range(rows * cols)]
        header[name] = {"dtype": "F32", "shape": [rows, cols],
                        "data_offsets": [len(data), len(data) + 4 * len(vals)]}
        data += struct.pack("<%df" % len(vals), *vals)

    def write_st(path, hdr, blob):
        h = json.dumps(hdr).encode()
        h += b" " * (-len(h) % 8)
        with open(path, "wb") as f:
            f.write(len(h).to_bytes(8, "little") + h + blob)

    model_st = os.path.join(tmp, "small.safetensors")
    write_st(model_st, header, data)
    calib_hdr, calib_data = {}, b""
    for name, (rows, cols) in weights.items():
        vals = [rng.gauss(0, 1) for _ in range(1000 * cols)]
        calib_hdr[name + ".input"] = {"dtype": "F32", "shape": [1000, cols],
                                      "data_offsets": [len(calib_data),
                                                       len(calib_data) + 4 * len(vals)]}
        calib_data += struct.pack("<%df" % len(vals), *vals)
    calib_st = os.path.join(tmp, "calib.safetensors")
    write_st(calib_st, calib_hdr, calib_data)
    static_recipe = os.path.join(recipes, "w8a8-static.yaml")
    err = run("quantize", "--recipe", static_recipe, model_st, "-o", os.path.join(tmp, "s.st"),
              code=1)
    assert "give --calib with a tensor a.weight.input" in err, err
    run("quantize", "--recipe", static_recipe, model_st, "-o", os.path.join(tmp, "s.st"),
        "--calib", calib_st)
    ins = run("inspect", os.path.join(tmp, "s.st"))
    for name in weights:
        assert name + ".input.scale" in ins and name + ".input.zero_point" in ins, ins
    assert '"granularity":"per_tensor"' in ins and '"dtype":"u8"' in ins, ins
print("quantize ok")

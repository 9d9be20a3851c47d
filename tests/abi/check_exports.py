#!/usr/bin/env python3
"""The exported API has one definition: the LLMQ_API declarations in include/, the names in
lib/llmq.map and the library's dynamic symbols must be the same three sets."""
import pathlib
import re
import shutil
import subprocess
import sys


def declared(include_dir):
    names = set()
    for header in sorted(pathlib.Path(include_dir).rglob("*.h")):
        text = re.sub(r"/\*.*?\*/", "", header.read_text(), flags=re.S)
        text = re.sub(r"//[^\n]*", "", text)
        for m in re.finditer(r"\bLLMQ_API\b([^;{]*?)\b(llmq_\w+)\s*\(", text):
            names.add(m.group(2))
    return names


def mapped(map_path):
    text = re.sub(r"/\*.*?\*/", "", pathlib.Path(map_path).read_text(), flags=re.S)
    names = set()
    for block in re.findall(r"global:(.*?)(?:local:|\})", text, flags=re.S):
        names.update(n.strip() for n in block.split(";") if n.strip())
    return names


def exported(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TtWwDdBbRr" and parts[2].startswith("llmq_"):
            names.add(parts[2].split("@")[0])
    return names


def main():
    lib, map_path, include_dir = sys.argv[1:4]
    if shutil.which("nm") is None:
        print("nm not found: skipping")
        return 77
    d, m, e = declared(include_dir), mapped(map_path), exported(lib)
    ok = True
    for label, a, b in (("declared LLMQ_API but not in llmq.map", d, m),
                        ("in llmq.map but not declared LLMQ_API", m, d),
                        ("exported by the library but not in llmq.map", e, m),
                        ("in llmq.map but not exported by the library", m, e)):
        diff = sorted(a - b)
        if diff:
            ok = False
            print(f"{label}: {', '.join(diff)}")
    print(f"{len(d)} declared, {len(m)} mapped, {len(e)} exported")
    return 0 if ok and d else 1


if __name__ == "__main__":
    sys.exit(main())

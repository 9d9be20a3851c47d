#!/usr/bin/env python3
"""The API reference is complete: Doxygen, run on the configured docs/Doxyfile (the `docs`
target's), prints no warning (undocumented symbol, parameter or return value, bad reference),
and every LLMQ_API function appears in it with a `@since` and a `@thread` section.

A header without a `@file` block would hide its functions from Doxygen's warnings (it
documents the members of documented files only), hence the comparison with the declarations.

usage: check_reference.py DOXYGEN DOXYFILE INCLUDE_DIR CHECK_EXPORTS_PY
Exit 77 (skipped) when doxygen is missing. SPDX-License-Identifier: MIT
"""
import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET


def main():
    doxygen, doxyfile, include_dir, check_exports = sys.argv[1:5]
    doxygen = shutil.which(doxygen)
    if doxygen is None:
        print("skipped: doxygen not found (Debian: doxygen)")
        return 77
    spec = importlib.util.spec_from_file_location("check_exports", check_exports)
    exports = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exports)
    declared = exports.declared(include_dir)

    with tempfile.TemporaryDirectory() as tmp:
        with open(doxyfile) as f:
            config = f.read()
        # later assignments win: write into tmp, with the XML this check reads (HTML stays on:
        # without it, doxygen 1.9.4 reports every parameter as undocumented)
        config += f"\nOUTPUT_DIRECTORY = {tmp}\nGENERATE_XML = YES\n"
        run = subprocess.run([doxygen, "-"], input=config, capture_output=True, text=True)
        output = (run.stdout + run.stderr).strip()
        problems = [f"doxygen: {line}" for line in output.splitlines()]
        if run.returncode != 0 and not problems:
            problems.append(f"doxygen exited with {run.returncode}")

        documented, files = {}, {}
        for path in glob.glob(os.path.join(tmp, "xml", "*_8h.xml")):
            compound = ET.parse(path).getroot().find("compounddef")
            files[compound.findtext("compoundname")] = "".join(
                compound.find("briefdescription").itertext()).strip() + "".join(
                compound.find("detaileddescription").itertext()).strip()
            for m in compound.iter("memberdef"):
                if m.get("kind") == "function":
                    documented[m.findtext("name")] = m
    headers = {os.path.basename(h) for h in
               glob.glob(os.path.join(include_dir, "**", "*.h"), recursive=True)}
    for header in sorted(headers):
        if not files.get(header):
            problems.append(f"{header}: no @file block (Doxygen would not check its members)")
    for name in sorted(declared - set(documented)):
        problems.append(f"{name}: not in the reference (is its header's @file block missing?)")
    for name in sorted(declared & set(documented)):
        detail = documented[name].find("detaileddescription")
        kinds = {s.get("kind") for s in detail.iter("simplesect")}
        titles = {"".join(t.itertext()).strip() for t in detail.iter("title")}
        if "since" not in kinds:
            problems.append(f"{name}: no @since")
        if "Thread safety:" not in titles:
            problems.append(f"{name}: no @thread")
    for p in problems:
        print(p)
    print(f"{len(declared)} public functions, {len(documented)} in the reference, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

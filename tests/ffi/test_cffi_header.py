#!/usr/bin/env python3
"""FFI generators read include/llmq.h unchanged: the preprocessed header goes to Debian's
python3-cffi (`FFI.cdef`), which must accept it and see every LLMQ_API function. Then the
hand-written declarations of examples/python/llmq.py (prototypes, structs, handle and enum
types, enum values) must equal what cffi read from the header.

The preprocessor runs with empty <stddef.h> and <stdint.h> (cffi knows size_t and the
fixed-width integers itself; the C library's headers are not ours to parse) and with
__attribute__ defined away (LLMQ_API's visibility, LLMQ_NODISCARD); nothing else is changed.

usage: test_cffi_header.py INCLUDE_DIR BINDING_DIR CHECK_EXPORTS_PY -- CC...
Exit 77 (skipped) without cffi; the binding checks are skipped (with a line) without NumPy.
SPDX-License-Identifier: MIT
"""
import ctypes
import importlib.util
import os
import re
import subprocess
import sys
import tempfile

SKIP = 77


def preprocess(cc, include_dir):
    with tempfile.TemporaryDirectory() as fake:
        for name in ("stddef.h", "stdint.h"):
            open(os.path.join(fake, name), "w").close()
        cmd = cc + ["-E", "-P", "-nostdinc", "-I", fake, "-I", include_dir,
                    "-D__attribute__(x)=", "-x", "c", os.path.join(include_dir, "llmq.h")]
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def functions(text):
    """{name: (return type, parameters)} of the function declarations in preprocessed C."""
    out = {}
    for m in re.finditer(r"([^;{}]*?)\b(llmq_\w+)\s*\(([^;{}]*?)\)\s*;", text, re.S):
        ret, name, params = (" ".join(g.split()) for g in m.groups())
        out[name] = (ret, params)
    return out


def fnptr(decl):
    return f"{decl[0]} (*)({decl[1]})"


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Canonical descriptions of types, one from cffi's ctypes of the header, one from the
# binding's Python ctypes, so that the two can be compared.
_CFFI_PRIMITIVES = {"char": "char", "int": "i32", "int8_t": "i8", "uint8_t": "u8",
                    "int16_t": "i16", "uint16_t": "u16", "int32_t": "i32", "uint32_t": "u32",
                    "int64_t": "i64", "uint64_t": "u64", "size_t": "u64", "float": "f32",
                    "double": "f64"}


def from_cffi(t):
    if t.kind == "primitive":
        return _CFFI_PRIMITIVES[t.cname]
    if t.kind == "enum":
        return "i32"
    if t.kind == "void":
        return "void"
    if t.kind == "pointer":
        return from_cffi(t.item) + "*"
    if t.kind == "struct":
        return t.cname.replace("struct ", "")
    if t.kind == "array":
        return f"{from_cffi(t.item)}[{t.length}]"
    if t.kind == "function":
        return f"fn({','.join(from_cffi(a) for a in t.args)})->{from_cffi(t.result)}"
    raise ValueError(f"unexpected cffi type {t}")


def from_ctypes(t, structs):
    if t is None:
        return "void"
    names = {ctypes.c_char: "char", ctypes.c_int8: "i8", ctypes.c_uint8: "u8",
             ctypes.c_int16: "i16", ctypes.c_uint16: "u16", ctypes.c_int32: "i32",
             ctypes.c_uint32: "u32", ctypes.c_int64: "i64", ctypes.c_uint64: "u64",
             ctypes.c_float: "f32", ctypes.c_double: "f64", ctypes.c_char_p: "char*",
             ctypes.c_void_p: "void*"}
    if t in names:
        return names[t]
    if hasattr(t, "_restype_") and hasattr(t, "_argtypes_"):  # CFUNCTYPE
        args = ",".join(from_ctypes(a, structs) for a in t._argtypes_)
        return f"fn({args})->{from_ctypes(t._restype_, structs)}"  # cffi: pointer = function
    if issubclass(t, ctypes._Pointer):
        return from_ctypes(t._type_, structs) + "*"
    if issubclass(t, ctypes.Array):
        return f"{from_ctypes(t._type_, structs)}[{t._length_}]"
    if issubclass(t, ctypes.Structure):
        return structs.get(t, t.__name__)
    raise ValueError(f"unexpected ctypes type {t}")


def check_binding(ffi, header_fns, binding_dir):
    """Differences between llmq.py's declarations and the header, as a list of lines."""
    try:
        import numpy  # noqa: F401  (llmq.py needs it)
    except ImportError:
        print(f"binding checks skipped: {sys.executable} has no NumPy")
        return []
    llmq = load_module(os.path.join(binding_dir, "llmq.py"), "llmq")
    problems = []
    protos = llmq.prototypes()
    for name in sorted(set(header_fns) - set(protos)):
        ret, params = header_fns[name]
        problems.append(f"llmq.py PROTOTYPES lacks {name}: add `{ret} {name}({params});`")
    for name in sorted(set(protos) - set(header_fns)):
        problems.append(f"llmq.py PROTOTYPES declares {name}, which the header does not")

    # C types: opaque handles, enums and structs with fields
    typedefs = ffi.list_types()[0]
    kinds = {n: ffi.typeof(n) for n in typedefs}
    handles = {n for n, t in kinds.items() if t.kind == "struct" and t.fields is None}
    enums = {n for n, t in kinds.items() if t.kind == "enum"}
    structs = {n for n, t in kinds.items() if t.kind == "struct" and t.fields is not None}
    for label, got, want in (("HANDLES", set(llmq.HANDLES), handles),
                             ("ENUMS", set(llmq.ENUMS), enums),
                             ("STRUCTS", set(llmq.STRUCTS), structs)):
        if got != want:
            problems.append(f"llmq.py {label}: lacks {sorted(want - got)}, "
                            f"has extra {sorted(got - want)}")
    struct_names = {cls: name for name, cls in llmq.STRUCTS.items()}
    struct_names.update({cls: name for name, cls in llmq._OPAQUE.items()})

    # every prototype: the same C function type and the same ctypes conversion
    binding_fns = functions(llmq.PROTOTYPES)
    for name in sorted(set(protos) & set(header_fns)):
        want, got = ffi.typeof(fnptr(header_fns[name])), ffi.typeof(fnptr(binding_fns[name]))
        if got is not want:
            problems.append(f"llmq.py {name}: declared {got.cname}, header {want.cname}")
            continue
        restype, argtypes = protos[name]
        mine = [from_ctypes(restype, struct_names)] + [from_ctypes(a, struct_names)
                                                       for a in argtypes]
        theirs = [from_cffi(want.result)] + [from_cffi(a) for a in want.args]
        if mine != theirs:
            problems.append(f"llmq.py {name}: ctypes {mine} != header {theirs}")

    # struct layouts: size, field names, offsets and types
    for cname, cls in llmq.STRUCTS.items():
        if cname not in structs:
            continue
        if ctypes.sizeof(cls) != ffi.sizeof(cname):
            problems.append(f"{cname}: ctypes size {ctypes.sizeof(cls)} != {ffi.sizeof(cname)}")
        theirs = [(f, ffi.offsetof(cname, f), from_cffi(ft.type)) for f, ft in
                  ffi.typeof(cname).fields]
        mine = [(f, getattr(cls, f).offset, from_ctypes(t, struct_names))
                for f, t in cls._fields_]
        if mine != theirs:
            problems.append(f"{cname}: fields {mine} != header {theirs}")

    # enum values: every enumerator (but FORCE32_) in the binding's tables, same value
    for cname in sorted(enums):
        values = {k: v for k, v in ffi.typeof(cname).relements.items()
                  if not k.endswith("FORCE32_")}
        if cname == "llmq_status":
            missing = [k for k, v in values.items() if v != 0 and v not in llmq._ERRORS]
            if missing:
                problems.append(f"llmq.py _ERRORS lacks an exception class for {missing}")
            continue
        if cname not in llmq.ENUM_TABLES:
            problems.append(f"llmq.py ENUM_TABLES lacks {cname}: {values}")
            continue
        prefix, table = llmq.ENUM_TABLES[cname]
        mine = {prefix + k.upper(): v for k, v in table.items()}
        if mine != values:
            problems.append(f"llmq.py table of {cname}: {mine} != header {values}")
    return problems


def main():
    try:
        import cffi
    except ImportError:
        print(f"skipped: {sys.executable} has no cffi (Debian: python3-cffi)")
        return SKIP
    sep = sys.argv.index("--")
    include_dir, binding_dir, check_exports = sys.argv[1:sep]
    cc = sys.argv[sep + 1:]

    text = preprocess(cc, include_dir)
    ffi = cffi.FFI()
    ffi.cdef(text)  # raises CDefError on anything cffi cannot read
    header_fns = functions(text)
    declared = load_module(check_exports, "check_exports").declared(include_dir)
    problems = []
    if set(header_fns) != declared:
        problems.append(f"functions cffi sees {sorted(set(header_fns) - declared)} and misses "
                        f"{sorted(declared - set(header_fns))} of the LLMQ_API declarations")
    for name, decl in sorted(header_fns.items()):
        try:
            ffi.typeof(fnptr(decl))
        except Exception as e:  # cffi's parse errors have several types
            problems.append(f"{name}: cffi cannot read {fnptr(decl)!r}: {e}")
    print(f"cffi read {len(text.splitlines())} preprocessed lines: {len(header_fns)} "
          f"functions, {len(ffi.list_types()[0])} types")
    problems += check_binding(ffi, header_fns, binding_dir)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

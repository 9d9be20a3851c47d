#!/bin/sh
# A real downstream build: install llmq into a scratch root, then compile and run
# examples/quantize_tensor.c against the installed llmq.pc, shared and static.
# usage: test_pkgconfig.sh BUILD_DIR SOURCE_DIR SANITIZED(true|false)
set -eu
build=$1 src=$2 sanitized=$3
if [ "$sanitized" = true ]; then
    echo "sanitized build: a plain downstream program cannot load an ASan library; skipping"
    exit 77
fi
command -v pkg-config >/dev/null || { echo "pkg-config not found: skipping"; exit 77; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
meson install -C "$build" --no-rebuild --quiet --destdir "$root" >/dev/null
pc=$(find "$root" -name llmq.pc | head -n 1)
[ -n "$pc" ] || { echo "llmq.pc was not installed"; exit 1; }
find "$root" -path '*/include/llmq/quantize.h' | grep -q . || { echo "headers missing"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$root
libdir=$(dirname "$(dirname "$pc")")  # llmq.pc lives in <libdir>/pkgconfig
cc=${CC:-cc}
$cc -std=c11 -Wall -Wextra -Werror $(pkg-config --cflags llmq) "$src/examples/quantize_tensor.c" \
    -o "$root/shared" $(pkg-config --libs llmq) -lm
out=$(LD_LIBRARY_PATH="$libdir" "$root/shared")
echo "$out"
echo "$out" | grep -q "max |x - dequant(quant(x))|" || { echo "unexpected output"; exit 1; }
# the program must really use the installed shared library, by its SONAME
ldd_out=$(LD_LIBRARY_PATH="$libdir" ldd "$root/shared")
echo "$ldd_out" | grep -q "libllmq.so.0 => $root" || { echo "not linked to libllmq.so.0"; exit 1; }
# static: libllmq.a plus the private libraries from llmq.pc
$cc -std=c11 $(pkg-config --cflags llmq) "$src/examples/quantize_tensor.c" -o "$root/static" \
    "$libdir/libllmq.a" $(pkg-config --libs-only-l --static llmq | sed "s/-lllmq//") -lm
"$root/static" | grep -q "max |x - dequant(quant(x))|"
echo "shared and static downstream builds work"

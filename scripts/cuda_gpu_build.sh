#!/bin/sh
# Build, test and benchmark llmq with CUDA on a GPU machine that has nvcc, meson and ninja but
# no package registry: Debian's CMocka (and libyaml) packages, downloaded elsewhere with
# `apt-get download libcmocka0 libcmocka-dev libyaml-0-2 libyaml-dev`, are unpacked into a
# private prefix that pkg-config and the loader are pointed at. docs/cuda.md describes it.
# usage: scripts/cuda_gpu_build.sh DEBS_DIR [BUILD_DIR]
set -eu
debs=$1 build=${2:-build-gpu}
sysroot=${TMPDIR:-/tmp}/llmq-sysroot
mkdir -p "$sysroot"
for f in "$debs"/*.deb; do dpkg -x "$f" "$sysroot"; done
export PKG_CONFIG_SYSROOT_DIR="$sysroot"
export PKG_CONFIG_PATH="$sysroot/usr/lib/x86_64-linux-gnu/pkgconfig"
export LD_LIBRARY_PATH="$sysroot/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
[ -d "$build" ] || meson setup "$build" -Dcuda=enabled
ninja -C "$build"
meson test -C "$build" --suite cuda --print-errorlogs
"$build/benchmarks/llmq-bench-cuda" --backend cuda

#!/bin/sh
# Stage prebuilt CUDA binaries for a GPU machine (docs/cuda.md, "Running on a GPU machine"):
# copies the libraries, the CUDA test, the benchmark and this folder's run script into DEST.
# usage: scripts/cuda_stage.sh BUILD_DIR DEST
set -eu
build=$1 dest=$2
mkdir -p "$dest/lib"
cp -a "$build"/lib/libllmq.so* "$build/lib/libllmq-cuda.so" "$dest/lib/"
cp "$build/tests/test_cuda" "$build/tests/test_cuda_qat" "$build/benchmarks/llmq-bench-cuda" \
   "$build/src/llmq" "$dest/"
cp "$(dirname "$0")/cuda_run.sh" "$dest/"
du -sh "$dest"

#!/bin/sh
# Run staged CUDA binaries on a GPU machine without a package registry: unpack Debian's
# libcmocka (and libyaml) packages into a private prefix, then run the CUDA tests (both
# tiers, then fake quantization) and the benchmark. Results go to $OUT (default /tmp/llmq-out).
# usage: cuda_run.sh STAGE_DIR DEBS_DIR [tests] [bench [bench args...]]
set -u
stage=$(cd "$1" && pwd) debs=$2
shift 2
out=${OUT:-/tmp/llmq-out}
mkdir -p "$out" /tmp/llmq-sysroot
for f in "$debs"/*.deb; do dpkg -x "$f" /tmp/llmq-sysroot; done
export LD_LIBRARY_PATH="/tmp/llmq-sysroot/usr/lib/x86_64-linux-gnu:$stage/lib:${LD_LIBRARY_PATH:-}"
export LLMQ_CUDA_MODULE="$stage/lib/libllmq-cuda.so"
if [ -z "${LLMQ_CUBLAS_DIR:-}" ]; then
    d=$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__))' 2>/dev/null)
    [ -n "$d" ] && export LLMQ_CUBLAS_DIR="$d/lib"
fi
rc=0
while [ $# -gt 0 ]; do
    case $1 in
    tests)
        for arch in native 75; do
            if [ $arch = native ]; then unset LLMQ_CUDA_ARCH; else export LLMQ_CUDA_ARCH=$arch; fi
            echo "== test_cuda, LLMQ_CUDA_ARCH=${LLMQ_CUDA_ARCH:-unset}"
            timeout 300 "$stage/test_cuda" > "$out/test_cuda_$arch.log" 2>&1
            r=$?
            grep -E "backend|PASSED|FAILED|ERROR|bit-identical|within|skipped|\[  FAILED|Failure|got|error" "$out/test_cuda_$arch.log" | head -40
            echo "exit $r"
            [ $r -eq 0 ] || rc=1
        done
        unset LLMQ_CUDA_ARCH
        echo "== test_cuda_qat"
        timeout 300 "$stage/test_cuda_qat" > "$out/test_cuda_qat.log" 2>&1
        r=$?
        grep -E "backend|PASSED|FAILED|ERROR|skipped|Failure|got|error" "$out/test_cuda_qat.log" | head -60
        echo "exit $r"
        [ $r -eq 0 ] || rc=1
        shift ;;
    bench)
        shift
        echo "== llmq-bench-cuda $*"
        timeout 500 "$stage/llmq-bench-cuda" "$@" 2>&1 | tee "$out/bench.log"
        shift $# ;;
    *) echo "unknown step $1"; exit 2 ;;
    esac
done
exit $rc

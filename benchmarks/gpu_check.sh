#!/usr/bin/env bash
# One pass of the GPU checks: the test suite on CUDA, fp16 and bf16 training of each preset, and the
# training-throughput and sampler benchmarks. Run from the repository root on a CUDA machine:
#
#     OUT=gpu_results bash benchmarks/gpu_check.sh
#
# Every part has its own time limit and writes its log under $OUT; a failing part does not stop the rest.
set -u
OUT=${OUT:-gpu_results}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
STEPS=${STEPS:-150}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, diffusers, accelerate, datasets; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| diffusers', diffusers.__version__, '| accelerate', accelerate.__version__, '| datasets', datasets.__version__); print(torch.cuda.get_device_name())"
} 2>&1 | tee "$OUT/gpu.txt"

# The offline dataset, built once before anything runs in parallel.
python3 -m data_prep glyphs --output_dir data/glyphs --overwrite >"$OUT/data_prep.log" 2>&1

# 1. The default test suite, with CUDA visible (runs beside the training runs below).
( timeout 400 python3 -m pytest -q -p no:cacheprovider ${PYTEST_ARGS:-} >"$OUT/pytest.log" 2>&1; echo "pytest exit $?" >>"$OUT/pytest.log" ) &
pytest_pid=$!

# 2. fp16 and bf16 training of each preset.
echo "| preset | precision | steps | wall s | exit | final losses |" >"$OUT/training.md"
echo "|---|---|---|---|---|---|" >>"$OUT/training.md"
for preset in tiny small base; do
  for precision in fp16 bf16; do
    run="$OUT/run_${preset}_${precision}"
    start=$(date +%s)
    timeout 70 accelerate launch --config_file accelerate_config.yaml --mixed_precision "$precision" train_ddpm.py \
      --dataset glyphs --model_preset "$preset" --max_train_steps "$STEPS" --validation_steps 100 \
      --save_images_steps "$STEPS" --checkpointing_steps 100000 --output_dir "runs/gpu_${preset}_${precision}" \
      >"$run.log" 2>&1
    code=$?
    losses=$(tail -n 1 "runs/gpu_${preset}_${precision}/losses.csv" 2>/dev/null | tr ',' ' ')
    echo "| $preset | $precision | $STEPS | $(( $(date +%s) - start )) | $code | $losses |" >>"$OUT/training.md"
  done
done
cp runs/gpu_tiny_bf16/sample_grid.png "$OUT/sample_grid_tiny_bf16.png" 2>/dev/null

# 3. Benchmarks (the test suite may still be running on the CPU cores; the GPU is theirs).
timeout 100 python3 benchmarks/train_throughput.py --dataset glyphs --rounds 2 >"$OUT/train_throughput.md" 2>&1
timeout 60 python3 -m benchmarks.sampling runs/gpu_tiny_bf16 --num_images 32 >"$OUT/sampling.md" 2>&1
wait "$pytest_pid"
cat "$OUT/training.md"; tail -n 3 "$OUT/pytest.log"; tail -n 12 "$OUT/train_throughput.md" "$OUT/sampling.md"

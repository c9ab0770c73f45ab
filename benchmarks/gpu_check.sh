#!/usr/bin/env bash
# The GPU checks of issue 15 as one prepared script, for a machine with one CUDA GPU (no network needed).
#
#   make venv TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu130"
#   OUT=gpu_check bash benchmarks/gpu_check.sh        # ≈ 10 min on an H100; results under $OUT/
#
# 1. the train: options (fp32 eager, bf16, channels_last, compile, all three) for SRResNet 8 × 64, RGB
#    32→128, batch 64, MSE and AffGAN (issue 15's goals: ≥ 7,000 img/s MSE, ≥ 3,400 img/s GAN);
# 2. the pipeline against a hand-written loop, and the projection's share of the step (goal ≤ 3 %);
# 3. a 500-step paper-scale AffGAN (CelebA 64→16 colour, the paper networks, batch 64, the CUDA
#    defaults) on a stand-in CelebA archive (scripts/standins.py), through `affsr prepare` and
#    `affsr train` as the workflow runs them; its loss log and wall time.
# Every command's output is kept in $OUT/*.log; the script stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check}
DEVICE=${DEVICE:-cuda}          # a CPU rehearsal of the commands: DEVICE=cpu BATCH=2 STEPS=1 WARMUP=1 TRAIN_STEPS=2 FACES=16
BATCH=${BATCH:-64}
STEPS=${STEPS:-50}
WARMUP=${WARMUP:-10}
TRAIN_STEPS=${TRAIN_STEPS:-500}
FACES=${FACES:-2000}
PY=${PY:-.venv/bin/python}
AFFSR=${AFFSR:-.venv/bin/affsr}
mkdir -p "$OUT"
{ nvidia-smi || echo "no nvidia-smi"; } > "$OUT/nvidia-smi.txt"
$PY -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')" | tee "$OUT/device.txt"

$PY benchmarks/train_step.py --options --study paper --dataset natural --methods mse affgan --device "$DEVICE" \
    --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --json "$OUT/options.json" 2>&1 | tee "$OUT/options.log"
$PY benchmarks/train_step.py --study paper --dataset natural --methods mse affmse affgan --device "$DEVICE" \
    --batch "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --json "$OUT/pipeline.json" 2>&1 | tee "$OUT/pipeline.log"

# 3. 500 steps of AffGAN at paper scale on 2,000 stand-in faces
WORK="$OUT/affgan500"
mkdir -p "$WORK"
$PY - "$WORK" "$FACES" "$TRAIN_STEPS" "$DEVICE" <<'PY'
import sys
from pathlib import Path
import yaml
sys.path.insert(0, "scripts")
from standins import make_celeba
work = Path(sys.argv[1])
faces_n, steps, device = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
make_celeba(work / "img_align_celeba.zip", {"train": faces_n, "val": 64, "test": 64}, seed=0)
params = yaml.safe_load(Path("params.yaml").read_text())
params["study"] = "paper"
faces = params["paper"]["datasets"]["faces"]
faces.update(n_train=faces_n, n_val=64, n_test=64)
params["paper"]["train"].update(steps=steps, log_every=min(50, steps), checkpoint_every=250, device=device)
(work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
PY
$AFFSR prepare --params "$WORK/params.yaml" --dataset faces --input "$WORK/img_align_celeba.zip" \
    --out "$WORK/data/faces" --quiet 2>&1 | tee "$OUT/affgan500_prepare.log"
start=$(date +%s)
$AFFSR train --params "$WORK/params.yaml" --dataset faces --method affgan --data "$WORK/data/faces" \
    --checkpoint "$WORK/runs/faces/affgan/model.pt" --log "$OUT/affgan500_losses.csv" 2>&1 | tee "$OUT/affgan500_train.log"
echo "affgan $TRAIN_STEPS steps on $DEVICE: $(( $(date +%s) - start )) s wall" | tee "$OUT/affgan500_time.txt"
echo "done: $OUT"

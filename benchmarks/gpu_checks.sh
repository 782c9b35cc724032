#!/usr/bin/env bash
# The checks that need a GPU, as one script (a lent GPU machine's time is short):
# the gpu-marked tests, one short epoch of every env family on CUDA, and the step-cost
# benchmarks (policy cost, isolation cost) on CUDA. Logs go to $OUT (default ./gpu-out).
#   bash benchmarks/gpu_checks.sh
# Missing Python packages can come as wheels in .whl/ (installed into /tmp/site).
set -uo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$OUT/device.log"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/device.log"
timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu tests/evaluation/test_metrics.py \
    tests/policies/test_gramian_properties.py tests/harness/test_isolation.py 2>&1 | tee "$OUT/gpu_tests.log"
timeout 200 python3 benchmarks/gpu_epoch.py --device cuda --out "$OUT/gpu_epoch.json" 2>&1 | tee "$OUT/gpu_epoch.log"
timeout 150 python3 benchmarks/policy_cost.py --device cuda --steps 10 --warmup 2 2>&1 | tee "$OUT/policy_cost.log"
timeout 60 python3 benchmarks/isolation_cost.py --device cuda --steps 20 2>&1 | tee "$OUT/isolation_cost.log"

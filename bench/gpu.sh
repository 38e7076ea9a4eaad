#!/usr/bin/env bash
# GPU figures of issue 16, item 7, on one GPU in under 5 minutes (bench/gpu.py): GoogLeNet inception4c Jacobian
# per realization (224 px, n_f = 512), batched NNLS codes vs scipy at equal accuracy, NMF k = 10,000 on
# d = 2,048 seconds per iteration, FV steps/s at 224 px, ResNet-50 activations images/s. Random weights only.
#   bench/gpu.sh            the issue's sizes (on a GPU; CUDA_VISIBLE_DEVICES picks which)
#   bench/gpu.sh --quick    tiny sizes: a smoke test that runs on a CPU
# Copy the printed lines into bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
else
    echo "no nvidia-smi: no GPU on this machine"
fi
PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" exec timeout 300 "$PYTHON" bench/gpu.py "$@"

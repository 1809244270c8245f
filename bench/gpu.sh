#!/usr/bin/env bash
# The GPU check (issue 16) in at most 5 minutes on one GPU: the gpu tests, then the
# figures (training tokens/s and MFU against the bf16 peak, generation tokens/s).
#
#   bench/gpu.sh            # a machine with a GPU and its own torch: no make, no venv
#   bench/gpu.sh --dry-run  # anywhere: the same steps on the CPU, tiny (checks code)
#
# It needs torch, numpy, tqdm, safetensors, tiktoken, regex and pytest. A missing one
# travels as a wheel file in .whl/ (pip download --no-deps ... -d .whl): installed into
# /tmp/site first. No data package is needed (the tests and figures use random ids).
# The last line is one summary: GPU SUMMARY | tests ... | figures ... | seconds.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py="${PYTHON:-python3}"
dry=()
case "${1:-}" in
  --dry-run) dry=(--dry-run); export LLMBOOK_GPU_DRY_RUN=1 CUDA_VISIBLE_DEVICES= ;;
  "") ;;
  *) echo "usage: bench/gpu.sh [--dry-run]" >&2; exit 2 ;;
esac
if compgen -G ".whl/*.whl" > /dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
log="$(mktemp -d)"
"$py" -c 'import torch; print("torch", torch.__version__, torch.cuda.is_available())'
command -v nvidia-smi > /dev/null &&
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

"$py" -m pytest -m gpu tests/test_gpu.py -q -rs -p no:cacheprovider 2>&1 |
  tee "$log/tests"
tests_rc=${PIPESTATUS[0]}
tests="$(tail -1 "$log/tests" | tr -d '=' | sed -E 's/, [0-9]+ warnings?| \(.*\)//g')"
tests="$(echo $tests)"  # one line, single spaces
"$py" bench/gpu_figures.py "${dry[@]}" 2>&1 | tee "$log/figures"
figures_rc=${PIPESTATUS[0]}
figures="$(grep '^FIGURES | ' "$log/figures" | tail -1 | cut -d'|' -f2-)"
[ -n "$figures" ] || figures=" figures failed (exit $figures_rc)"
echo "GPU SUMMARY | tests: $tests |$figures | ${SECONDS} s in all"
rm -rf "$log"
[ "$tests_rc" = 0 ] && [ "$figures_rc" = 0 ]

#!/bin/bash
# sweeps/paper_regime.toml (the paper's model and regime, 65 points) on one GPU: WORKERS runs
# share the chip (`--device cuda`, local pool), each training step through torch.compile
# (`--compile true`: steps this small are launch-bound on a GPU, which fusing cuts, and these
# runs are long enough to repay the compile; the GPU gain is unmeasured, COMPILE=false: eager).
# The flags are laid over every grid, so points are named ..._device-cuda_compile-True and never
# mix with the CPU sweep's; the fits hold `compile` fixed (sweep.fit.AXIS_COLUMNS). Resumable:
# run it again (done points are skipped, unfinished runs resume in their saved mode); each
# finished run's record goes to results/paper_regime_gpu/records (commit it: a lent GPU machine
# keeps nothing). Not CI.
#   bash sweeps/paper_regime_gpu.sh [OUT=sweeps/out/paper_regime_gpu] [WORKERS=3/4 of the cores]
#   mbc sweep --out sweeps/out/paper_regime_gpu --status
#   mbc fit sweeps/out/paper_regime_gpu --results results/paper_regime_gpu
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/sweeps/out/paper_regime_gpu}
workers=${2:-$(( $(nproc) * 3 / 4 ))}  # each run's Python drives its kernels: CPU-bound
python=${PYTHON:-$root/.venv/bin/python}
"$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "no CUDA device")'
# one compile thread per run (WORKERS runs compile at once at the start); later points reuse
# the inductor cache the first compiles leave, so they compile in a fraction of the time
export TORCHINDUCTOR_COMPILE_THREADS=1
cd "$root"
exec "$python" -m mbc_interp.cli sweep --config sweeps/paper_regime.toml --out "$out" \
    --workers "$workers" --device cuda --compile "${COMPILE:-true}" \
    --records "$root/results/paper_regime_gpu/records"

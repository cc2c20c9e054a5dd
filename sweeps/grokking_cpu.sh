#!/bin/bash
# Run sweeps/grokking_cpu.toml in the background from a snapshot of the committed code, so the
# working tree can move while it runs; run it again to resume (done points are skipped,
# unfinished runs resume from their last checkpoint).
#   bash sweeps/grokking_cpu.sh [OUT=sweeps/out/grokking_cpu] [WORKERS=1]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$root/sweeps/out/grokking_cpu}")
workers=${2:-1}
snap="$out.code/$(git -C "$root" rev-parse --short HEAD)"
if [ ! -d "$snap" ]; then
    mkdir -p "$snap"
    git -C "$root" archive HEAD mbc_interp sweeps | tar -x -C "$snap"
fi
mkdir -p "$out"
# from the snapshot's directory, so neither the working tree nor the editable install is imported
cd "$snap"
PYTHONPATH="$snap" nohup "$root/.venv/bin/python" -c \
    'import sys; from mbc_interp.cli import main; sys.exit(main())' \
    sweep --config "$snap/sweeps/grokking_cpu.toml" --out "$out" --workers "$workers" \
    >>"$out.log" 2>&1 &
echo "sweep running (pid $!) from $snap; log: $out.log"

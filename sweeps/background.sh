#!/bin/bash
# Run sweeps/NAME.toml in the background from a snapshot of the committed code, so the working
# tree can move while it runs; run it again to resume (done points are skipped, unfinished runs
# resume from their last checkpoint). Each finished run's record (its files but the weights) is
# kept in results/NAME/records/ and restored from there, so a sweep goes on from its committed
# records on a machine that never held its directory: commit them as they come. The sweep runs
# in its own process group, whose id is written to OUT.pgid: stop it, workers included, with
# `kill -- -$(cat OUT.pgid)`.
#   bash sweeps/background.sh NAME [OUT=sweeps/out/NAME] [WORKERS=1]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: background.sh NAME [OUT] [WORKERS]}
out=$(realpath -m "${2:-$root/sweeps/out/$name}")
workers=${3:-1}
snap="$out.code/$(git -C "$root" rev-parse --short HEAD)"
if [ ! -d "$snap" ]; then
    mkdir -p "$snap"
    git -C "$root" archive HEAD mbc_interp sweeps | tar -x -C "$snap"
fi
mkdir -p "$out"
# from the snapshot's directory, so neither the working tree nor the editable install is imported
cd "$snap"
PYTHONPATH="$snap" nohup setsid "$root/.venv/bin/python" -c \
    'import sys; from mbc_interp.cli import main; sys.exit(main())' \
    sweep --config "$snap/sweeps/$name.toml" --out "$out" --workers "$workers" \
    --records "$root/results/$name/records" \
    >>"$out.log" 2>&1 &
echo "$!" >"$out.pgid"  # setsid: the process is its group's leader
echo "sweep running (pid $!) from $snap; log: $out.log; stop: kill -- -\$(cat $out.pgid)"

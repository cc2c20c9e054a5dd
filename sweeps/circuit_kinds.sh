#!/bin/bash
# Add the circuit's analyses to a sweep's finished runs, in place, from a snapshot of the code:
# `groups` at every analysed checkpoint (per-group solve times: the collective score) and
# `ablation` at the last checkpoint only (necessity and sufficiency of the routing heads, read
# there; ~1 min a checkpoint on the paper's model). Re-runnable: a run whose summary has both
# is skipped, so run it again as the sweep finishes more points. Then refit:
#   bash sweeps/circuit_kinds.sh sweeps/out/paper_regime          # in the background
#   mbc fit sweeps/out/paper_regime --results results/paper_regime --doc REPRODUCTION.md
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sweep=$(realpath "${1:?usage: circuit_kinds.sh SWEEP_DIR}")
snap="$sweep.code/$(git -C "$root" rev-parse --short HEAD)"
if [ ! -d "$snap" ]; then
    mkdir -p "$snap"
    git -C "$root" archive HEAD mbc_interp sweeps | tar -x -C "$snap"
fi
log="$sweep.circuit.log"
(
cd "$snap"
mbc() { PYTHONPATH="$snap" "$root/.venv/bin/python" -c \
    'import sys; from mbc_interp.cli import main; sys.exit(main())' "$@"; }
has() { "$root/.venv/bin/python" -c "import json,sys; s=json.load(open(sys.argv[1])); \
sys.exit(0 if s.get('groups') and s.get('ablation') else 1)" "$1"; }
status() { "$root/.venv/bin/python" -c "import json,sys; print(json.load(open(sys.argv[1])).get('status'))" "$1"; }
last() { "$root/.venv/bin/python" -c "import json,sys; m=json.load(open(sys.argv[1])); \
print(max(int(c['step']) for c in m['checkpoints']))" "$1"; }
for pf in "$sweep"/points/*.json; do
    name=$(basename "$pf" .json)
    run="$sweep/runs/$name"
    [ "$(status "$pf")" = "done" ] || continue
    [ -f "$run/analysis/summary.json" ] || continue
    has "$run/analysis/summary.json" && continue
    echo "== $name $(date +%H:%M:%S)"
    mbc analyze "$run" --kinds groups --no-progress
    mbc analyze "$run" --kinds ablation --start "$(last "$run/manifest.json")" --no-progress
done
echo "== all done $(date +%H:%M:%S)"
) >>"$log" 2>&1 &
echo "circuit analyses running (pid $!) from $snap; log: $log"

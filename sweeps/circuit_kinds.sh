#!/bin/bash
# Add the circuit's analyses to a sweep's finished runs, in place, from a snapshot of the code:
# `groups` at every analysed checkpoint (per-group solve times: the collective score) and
# `ablation` at the last checkpoint only (necessity and sufficiency of the routing heads, read
# there; ~1 min a checkpoint on the paper's model). Re-runnable: a run whose summary has both
# is skipped, so run it again as the sweep finishes more points. Other kinds may be named after
# the sweep (ablation still at the last checkpoint only, the others at every one). Then refit:
#   bash sweeps/circuit_kinds.sh sweeps/out/paper_regime          # in the background
#   bash sweeps/circuit_kinds.sh sweeps/out/grokking_cpu groups   # the collective claim only
#   mbc fit sweeps/out/paper_regime --results results/paper_regime --doc REPRODUCTION.md \
#       --summary README.md
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sweep=$(realpath "${1:?usage: circuit_kinds.sh SWEEP_DIR [KIND...]}")
shift
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(groups ablation)
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
sys.exit(0 if all(s.get(k) for k in sys.argv[2:]) else 1)" "$1" "${kinds[@]}"; }
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
    for kind in "${kinds[@]}"; do
        if [ "$kind" = ablation ]; then
            mbc analyze "$run" --kinds ablation --start "$(last "$run/manifest.json")" --no-progress
        else
            mbc analyze "$run" --kinds "$kind" --no-progress
        fi
    done
done
echo "== all done $(date +%H:%M:%S)"
) >>"$log" 2>&1 &
echo "circuit analyses running (pid $!) from $snap; log: $log"

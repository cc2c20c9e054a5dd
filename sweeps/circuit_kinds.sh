#!/bin/bash
# Add the circuit's analyses to a sweep's finished runs, in place, from a snapshot of the code:
# `groups` at every analysed checkpoint (per-group solve times: the collective score), and
# `ablation` and `ablation_z` (z alone removed) at the last checkpoint only (necessity and
# sufficiency of the routing heads, read there; ~1 min a checkpoint on the paper's model).
# Without kinds named, each run gets those of the three its task provides (a grokking run:
# `groups`; the ablations need a selector). Re-runnable: a run whose summary has them all is
# skipped, so run it again as the sweep finishes more points. Other kinds may be named after the
# sweep (the ablations still at the last checkpoint only, the others at every one); a named
# kind the task lacks fails with the capability it needs. A run whose
# ablation predates the first-token marginal (`marginal_gain` in its summary, on a task with
# candidates) has that kind recomputed (`mbc analyze --redo ablation`), its other rows kept; its
# committed record, where the sweep keeps one, is rewritten. Then refit:
#   bash sweeps/circuit_kinds.sh sweeps/out/paper_regime          # in the background
#   bash sweeps/circuit_kinds.sh sweeps/out/grokking_cpu          # groups only: no selector
#   mbc fit sweeps/out/paper_regime --results results/paper_regime --doc REPRODUCTION.md \
#       --summary README.md
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sweep=$(realpath "${1:?usage: circuit_kinds.sh SWEEP_DIR [KIND...]}")
shift
kinds=("$@")
named=${#kinds[@]}  # 0: the default kinds, each where the run's task provides what it needs
[ "$named" -gt 0 ] || kinds=(groups ablation ablation_z)
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
# what a run's summary still needs: the kinds it lacks (the default ones only where its task
# provides what they need), and `stale` where its ablation (on a task with candidates) predates
# the first-token marginal; nothing once it has them all
needs() { PYTHONPATH="$snap" "$root/.venv/bin/python" -c "import json,sys
s = json.load(open(sys.argv[1] + '/analysis/summary.json')); kinds = sys.argv[3:]
if sys.argv[2] == '0':
    from mbc_interp.analysis.registry import get_kind
    from mbc_interp.store.run import load_run
    task = load_run(sys.argv[1]).task
    kinds = [k for k in kinds if get_kind(k).supports(task)]
a = s.get('ablation') or {}
old = a.get('metric') == 'cand_loss_increase' and 'marginal_gain' not in a
print(*[k for k in kinds if not s.get(k)], *(['stale'] if old else []))" \
    "$1" "$named" "${kinds[@]}"; }
status() { "$root/.venv/bin/python" -c "import json,sys; print(json.load(open(sys.argv[1])).get('status'))" "$1"; }
last() { "$root/.venv/bin/python" -c "import json,sys; m=json.load(open(sys.argv[1])); \
print(max(int(c['step']) for c in m['checkpoints']))" "$1"; }
for pf in "$sweep"/points/*.json; do
    name=$(basename "$pf" .json)
    run="$sweep/runs/$name"
    [ "$(status "$pf")" = "done" ] || continue
    [ -f "$run/analysis/summary.json" ] || continue
    # only what is missing: a kind named again would bring the earlier analysis' kinds along
    # (ablation, at every checkpoint)
    read -r -a todo <<<"$(needs "$run")"
    [ ${#todo[@]} -gt 0 ] || continue
    echo "== $name (${todo[*]}) $(date +%H:%M:%S)"
    for kind in "${todo[@]}"; do
        if [ "$kind" = stale ]; then
            mbc analyze "$run" --redo ablation --start "$(last "$run/manifest.json")" --no-progress
        elif [ "$kind" = ablation ] || [ "$kind" = ablation_z ]; then
            mbc analyze "$run" --kinds "$kind" --start "$(last "$run/manifest.json")" --no-progress
        else
            mbc analyze "$run" --kinds "$kind" --no-progress
        fi
    done
    record="$root/results/$(basename "$sweep")/records/$name"
    if [ -d "$record" ]; then  # the committed record carries the new rows
        PYTHONPATH="$snap" "$root/.venv/bin/python" -c "import sys
from mbc_interp.store.records import read_record_outcome, write_record
write_record(sys.argv[1], read_record_outcome(sys.argv[2]), sys.argv[2])" "$run" "$record"
        echo "rewrote $record"
    fi
done
echo "== all done $(date +%H:%M:%S)"
) >>"$log" 2>&1 &
echo "circuit analyses running (pid $!) from $snap; log: $log"

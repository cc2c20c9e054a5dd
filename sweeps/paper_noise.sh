#!/bin/bash
# The paper's task under the noise rules (REPRODUCTION.md, "Gradient noise and the plateau"):
# copy the finished runs of a paper sweep and analyse the copies with the gradients kind, on the
# checkpoints of each run's plateau window only (the only ones the rules use; all of them would
# cost ~75 CPU-minutes for sweeps/paper_cpu.toml). Runs without a plateau are copied as they
# are (nothing to measure). The source sweep is never written to. Re-runnable: a run already
# analysed is skipped.
#   bash sweeps/paper_noise.sh [SRC=sweeps/out/paper_cpu] [DST=sweeps/out/paper_noise]
#   mbc fit sweeps/out/paper_noise --noise --results results/paper_noise --doc REPRODUCTION.md
set -u
SRC=${1:-sweeps/out/paper_cpu}
DST=${2:-sweeps/out/paper_noise}
PY=${PYTHON:-python}
TIMEFORMAT="  cpu %U+%S s, wall %R s"
mkdir -p "$DST/runs" "$DST/points"
cp "$SRC/sweep.json" "$DST/"
field() { $PY -c "import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))" "$1" "$2"; }
for pf in "$SRC"/points/*.json; do
  name=$(basename "$pf" .json)
  [ "$(field "$pf" status)" = "done" ] || { echo "skip $name ($(field "$pf" status))"; continue; }
  [ -f "$DST/.done_$name" ] && continue
  rm -rf "$DST/runs/$name"; cp -r "$SRC/runs/$name" "$DST/runs/$name"; cp "$pf" "$DST/points/"
  summary="$DST/runs/$name/analysis/summary.json"
  t0=$(field "$summary" t_plateau_start); t1=$(field "$summary" t_plateau_end)
  if [ "$t0" = "None" ] || [ "$t1" = "None" ]; then
    echo "$name: no plateau; copied as it is"
  else  # one analysis setting per run: the copy's other step files go
    rm -rf "$DST/runs/$name/analysis/steps" "$DST/runs/$name/analysis/config.json"
    echo "$(date +%T) $name: steps ${t0%.*} to ${t1%.*}"
    time $PY -m mbc_interp.cli analyze "$DST/runs/$name" --n-pairs 128 --n-examples 256 \
      --patch-kinds head_out_all_pos --kinds gradients --start "${t0%.*}" --stop "${t1%.*}" \
      --no-progress | head -1
  fi
  touch "$DST/.done_$name"
done

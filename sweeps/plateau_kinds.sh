#!/bin/bash
# Analyse copies of a sweep's finished runs with extra per-checkpoint kinds (default: gradients),
# on the checkpoints of each run's plateau window only: the only ones the noise rules use
# (REPRODUCTION.md, "Gradient noise and the plateau"), at a fraction of the cost of every
# checkpoint. Runs without a plateau are copied as they are (nothing to measure). The source
# sweep is never written to. Re-runnable: a run already analysed is skipped.
#   bash sweeps/plateau_kinds.sh SRC DST            # e.g. sweeps/out/paper_cpu sweeps/out/paper_noise
#   KINDS="gradients llc" ONLY='^D[0-9]+_K4_lr0.0003_b128_s[01]$' bash sweeps/plateau_kinds.sh \
#       sweeps/out/noise_cpu sweeps/out/noise_llc   # the LLC across D (question b)
#   mbc fit DST --noise --results results/NAME --doc REPRODUCTION.md
# KINDS: the extra kinds (mbc analyze --kinds); ONLY: an extended regex on point names.
set -u
SRC=${1:?source sweep directory}
DST=${2:?destination directory}
KINDS=${KINDS:-gradients}
ONLY=${ONLY:-.}
PY=${PYTHON:-python}
TIMEFORMAT="  cpu %U+%S s, wall %R s"
mkdir -p "$DST/runs" "$DST/points"
cp "$SRC/sweep.json" "$DST/"
field() { $PY -c "import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))" "$1" "$2"; }
for pf in "$SRC"/points/*.json; do
  name=$(basename "$pf" .json)
  echo "$name" | grep -Eq "$ONLY" || continue
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
    # shellcheck disable=SC2086  # KINDS is a list
    time $PY -m mbc_interp.cli analyze "$DST/runs/$name" --n-pairs 128 --n-examples 256 \
      --patch-kinds head_out_all_pos --kinds $KINDS --start "${t0%.*}" --stop "${t1%.*}" \
      --no-progress | sed -n '1,4p'  # the plan (sed reads on: the command keeps its stdout)
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "FAILED $name (run again to retry)"; continue; }
  fi
  touch "$DST/.done_$name"
done

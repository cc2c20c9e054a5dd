#!/bin/bash
# The paper's task under the noise rules (REPRODUCTION.md, "Gradient noise and the plateau"):
# the gradients kind on the plateau window of each finished run of a paper sweep, on copies.
#   bash sweeps/paper_noise.sh [SRC=sweeps/out/paper_cpu] [DST=sweeps/out/paper_noise]
#   mbc fit sweeps/out/paper_noise --noise --results results/paper_noise --doc REPRODUCTION.md
exec bash "$(dirname "$0")/plateau_kinds.sh" "${1:-sweeps/out/paper_cpu}" "${2:-sweeps/out/paper_noise}"

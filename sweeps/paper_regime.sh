#!/bin/bash
# The paper-regime sweep in the background from a snapshot of the code (see background.sh).
#   bash sweeps/paper_regime.sh [OUT] [WORKERS]
exec bash "$(dirname "$0")/background.sh" paper_regime "$@"

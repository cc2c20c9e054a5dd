#!/bin/bash
# The grokking sweep in the background from a snapshot of the code (see background.sh).
#   bash sweeps/grokking_cpu.sh [OUT] [WORKERS]
exec bash "$(dirname "$0")/background.sh" grokking_cpu "$@"

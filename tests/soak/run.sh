#!/usr/bin/env bash
# The long fault soaks of issue 21, with their figures (minutes; not part of CI, whose e2e tests run
# the same scripts with small counts):
#   - 20 random SIGKILLs of ranks and mpirun, also inside checkpoint writes and renames: every
#     attempt resumes from the newest complete bundle, and the final weights, EMA, optimiser and the
#     whole loss and gradient-norm curves equal an uninterrupted run's, bit for bit;
#   - 5 SIGKILLs of `ldm-coord serve` during one two-stage run: metric points lost and duplicated
#     (goal: 0 and 0);
#   - a SIGSTOPped rank torn down by the watchdog, and a NaN run skipped, rolled back and ended
#     diverged (the CI e2e tests of the watchdog and of numerical faults).
# Usage: tests/soak/run.sh [BUILD_DIR]   (default: ./build; LDM_SOAK_KILLS, LDM_SOAK_COORD_KILLS,
# LDM_SOAK_SEED override the counts and the seed of the kill order)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
export LDM_BIN=$PWD/$build/bin LDM_REPO=$PWD
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export LDM_SOAK_KILLS=${LDM_SOAK_KILLS:-20} LDM_SOAK_COORD_KILLS=${LDM_SOAK_COORD_KILLS:-5}
py=/usr/bin/python3
[[ -x $py ]] || py=python3
log=$(mktemp -d)/soak.log
echo "soak: logging to $log"
start=$(date +%s)
status=0
$py tests/e2e/test_kill_soak_e2e.py -v 2>&1 | tee -a "$log" || status=1
$py tests/e2e/test_restart_e2e.py -v -k sigkills_of_serve 2>&1 | tee -a "$log" || status=1
$py tests/e2e/test_comm_e2e.py -v -k Watchdog 2>&1 | tee -a "$log" || status=1
$py tests/e2e/test_train_e2e.py -v -k diverged -k skips 2>&1 | tee -a "$log" || status=1
echo
echo "== soak figures ($(($(date +%s) - start)) s) =="
grep -oE "(kill soak: .*|(pretrain|finetune): [0-9]+ coordinator kills.*|^kill [0-9]+: .*)" "$log" || true
grep -E "^(OK|FAILED)" "$log" || true
exit $status

#!/usr/bin/env bash
# The laptop-scale study of the paper's claims: runs the five repro sweeps (a-e) with the local
# executor into one state directory, then writes the report (report/README.md, its figures and
# sample grids) and experiments/repro/README.md (the introduction below the report's verdicts and
# tables, and the wall time of this run).
#
#   bash experiments/repro/run.sh            # from the repository root, after cluster/build.sh
#
# LDM_BIN (default build/bin), LDM_REPRO_STATE (default .ldm-repro) and LDM_REPRO_SWEEPS (default
# "a b c d e") change what runs. A sweep already in the state directory is not run again (its
# stored results are reported): delete the state directory, or `ldm-coord delete NAME`, to rerun one.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${LDM_BIN:-build/bin}
STATE=${LDM_REPRO_STATE:-.ldm-repro}
HERE=experiments/repro
declare -A FILES=([a]=a-control-weighting [b]=b-transfer [c]=c-pos-embed [d]=d-text-padding [e]=e-noise-schedule)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1   # mpirun as root (containers, CI)

start=$(date +%s)
names=()
for key in ${LDM_REPRO_SWEEPS:-a b c d e}; do
  file=$HERE/${FILES[$key]}.toml
  name=repro-${FILES[$key]}
  names+=("$name")
  if "$BIN/ldm-coord" status "$name" --state "$STATE" >/dev/null 2>&1; then
    echo "== $name: already in $STATE, reporting its stored results"
    continue
  fi
  echo "== $name: $(date -u +%H:%M:%S) ldm-coord run $file"
  t0=$(date +%s)
  "$BIN/ldm-coord" run "$file" --state "$STATE"
  echo "== $name: $(( $(date +%s) - t0 )) s"
done
total=$(( $(date +%s) - start ))

"$BIN/ldm-coord" report "${names[@]}" --state "$STATE" --out "$HERE/report" --claims "$HERE/claims.toml" \
  --grid-seeds 1
{
  cat "$HERE/intro.md"
  echo
  echo "This run: \`bash experiments/repro/run.sh\` took **$((total / 60)) min $((total % 60)) s** of wall time on" \
    "$(nproc) cores ($(date -u +%Y-%m-%d), $(git rev-parse --short HEAD 2>/dev/null || echo 'no git'))."
  echo
  # The report, its links pointing into report/.
  sed -e 's#](repro-#](report/repro-#g' -e 's/^# Results report/# The report/' "$HERE/report/README.md"
} > "$HERE/README.md"
echo "wrote $HERE/README.md ($total s)"

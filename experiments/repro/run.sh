#!/usr/bin/env bash
# The laptop-scale study of the paper's claims: runs the five repro sweeps (a-e) with the local
# executor into one state directory, then writes the report (report/README.md, its figures and
# sample grids) and experiments/repro/README.md (intro.md, then the report with its links into
# report/, and the wall time the sweeps took).
#
#   bash experiments/repro/run.sh            # from the repository root, after cluster/build.sh
#
# LDM_BIN (default build/bin), LDM_REPRO_STATE (default .ldm-repro) and LDM_REPRO_SWEEPS (default
# "a b c d e") change what runs. A sweep already in the state directory is not run again (its
# stored results are reported, and its recorded wall time counted): delete the state directory, or
# `ldm-coord delete NAME`, to rerun one.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${LDM_BIN:-build/bin}
STATE=${LDM_REPRO_STATE:-.ldm-repro}
HERE=experiments/repro
declare -A FILES=([a]=a-control-weighting [b]=b-transfer [c]=c-pos-embed [d]=d-text-padding [e]=e-noise-schedule)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1   # mpirun as root (containers, CI)
mkdir -p "$STATE"
TIMES=$STATE/repro-times.txt   # "<sweep> <seconds>" per sweep run by this script
touch "$TIMES"

names=()
for key in ${LDM_REPRO_SWEEPS:-a b c d e}; do
  file=$HERE/${FILES[$key]}.toml
  name=repro-${FILES[$key]}
  names+=("$name")
  # export reads the store itself when no coordinator serves it, and fails only for an unknown name
  # (`run` would store a second copy under NAME-2).
  if "$BIN/ldm-coord" export "$name" --state "$STATE" --out /dev/null >/dev/null 2>&1; then
    echo "== $name: already in $STATE, reporting its stored results"
    continue
  fi
  echo "== $name: $(date -u +%H:%M:%S) ldm-coord run $file"
  t0=$(date +%s)
  "$BIN/ldm-coord" run "$file" --state "$STATE"
  echo "$name $(( $(date +%s) - t0 ))" >> "$TIMES"
  echo "== $name: $(( $(date +%s) - t0 )) s"
done

"$BIN/ldm-coord" report "${names[@]}" --state "$STATE" --out "$HERE/report" --claims "$HERE/claims.toml" \
  --grid-seeds 1
total=0
lines=()
for name in "${names[@]}"; do
  s=$(awk -v n="$name" '$1 == n { s = $2 } END { print s + 0 }' "$TIMES")
  total=$(( total + s ))
  lines+=("$name $((s / 60)) min")
done
{
  cat "$HERE/intro.md"
  echo
  echo "**This run**: \`bash experiments/repro/run.sh\`, $((total / 60)) min $((total % 60)) s of wall time for the" \
    "five sweeps on $(nproc) cores ($(IFS=';'; echo "${lines[*]}" | sed 's/;/, /g')), at" \
    "$(git rev-parse --short HEAD 2>/dev/null || echo 'an unknown revision'); report written $(date -u +%Y-%m-%d)."
  echo
  if [ -f "$HERE/findings.md" ]; then cat "$HERE/findings.md"; echo; fi
  # The report one heading level down, its links pointing into report/.
  sed -e 's#](repro-#](report/repro-#g' -e 's/^#/##/' -e 's/^## Results report/## The report/' \
    "$HERE/report/README.md"
} > "$HERE/README.md"
echo "wrote $HERE/README.md (the sweeps: $total s)"

#!/usr/bin/env bash
# The long fuzz campaign: every target under atheris (hypothesis if atheris is missing), one
# process at a time, niced. Usage: fuzz/campaign.sh [SECONDS_PER_TARGET]   (default 600)
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
engine=atheris
python -c "import atheris" 2>/dev/null || engine=hypothesis
for t in kdump elf flattened printk vmcoreinfo notes; do
  echo "== $t ($engine, ${secs}s)"
  if [ "$engine" = atheris ]; then
    nice -n 19 python -m fuzz.run "$t" --runs 100000000 --seconds "$secs" 2>&1 \
      | grep -E "FINDING|DONE|Done|Error|Traceback" || true
  else
    timeout "$secs" nice -n 19 python -m fuzz.run "$t" --engine hypothesis --runs 1000000 || true
  fi
done

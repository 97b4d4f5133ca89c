#!/usr/bin/env bash
# The long fuzz campaign: every target under atheris (hypothesis if atheris is missing), one
# process at a time, niced. Usage: fuzz/campaign.sh [SECONDS_PER_TARGET] [TARGET...]
# Atheris runs go in chunks of at most 120 s, each a fresh process resuming the same corpus
# (under atheris the process grows by ~50 MB per 1,000 kdump inputs; replayed without it,
# the same inputs stay flat — see README.md).
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(kdump elf flattened printk vmcoreinfo notes memory kmem vmcoreinfo_values triage btf ko)
engine=atheris
python -c "import atheris" 2>/dev/null || engine=hypothesis
corpora=${FUZZ_CORPUS:-/tmp/crashtui-fuzz-corpus}
for t in "${targets[@]}"; do
  echo "== $t ($engine, ${secs}s)"
  if [ "$engine" = atheris ]; then
    left=$secs
    while [ "$left" -gt 0 ]; do
      chunk=$(( left < 120 ? left : 120 ))
      nice -n 19 python -m fuzz.run "$t" --runs 100000000 --seconds "$chunk" \
        --corpus "$corpora/$t" 2>&1 | grep -E "FINDING|DONE|ERROR|Traceback|SUMMARY" || true
      left=$(( left - chunk ))
    done
  else
    timeout "$secs" nice -n 19 python -m fuzz.run "$t" --engine hypothesis --runs 1000000 || true
  fi
done

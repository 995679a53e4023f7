#!/usr/bin/env bash
# make bench-compare: govn vs OVN 23.03 with one workload driver, same
# machine, same run. QUICK=1: the CI size (2 switches x 50 ports, < 1 min).
# SIZES (default 1000,5000,10000 total ports on 100 switches), SAMPLES
# (default 20) and OUT (default bench/out) can be overridden. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
$GO build -o "$OUT/govn" ./cmd/govn
$GO build -o "$OUT/benchcompare" ./bench/cmd/benchcompare
args=(--govn-bin "$OUT/govn" --json "$OUT/results.json" --markdown "$OUT/results.md" --profile-dir "$OUT"
	--controller-profile-seconds "${CONTROLLER_PROFILE_SECONDS:-10}")
if [ "${QUICK:-}" = 1 ]; then
	args+=(--quick)
else
	args+=(--sizes "${SIZES:-1000,5000,10000}" --samples "${SAMPLES:-20}")
fi
exec "$OUT/benchcompare" "${args[@]}"

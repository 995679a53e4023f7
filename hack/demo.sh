#!/usr/bin/env bash
# make demo: the first two-chassis ping. Builds the demo program (hack/demo:
# e2e/harness chassis and pods, govn up, govn controller per chassis, govnctl)
# and runs it as root. It tears down everything it started, also on failure
# or Ctrl-C, and exits non-zero if any expectation fails.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
GOVN=${GOVN:-bin/govn}
GOVNCTL=${GOVNCTL:-bin/govnctl}
if [ "$(id -u)" -ne 0 ]; then
  echo "make demo needs root (network namespaces, Open vSwitch): run it as root or with sudo" >&2
  exit 1
fi
for b in "$GOVN" "$GOVNCTL"; do
  [ -x "$b" ] || { echo "demo: $b not built (make build)" >&2; exit 1; }
done
"$GO" build -o bin/govn-demo ./hack/demo
exec bin/govn-demo --govn "$GOVN" --govnctl "$GOVNCTL" "$@"

#!/usr/bin/env bash
# Regenerates all generated code (libovsdb models, protobuf) and fails if that
# changed anything: committed generated code must match its sources.
# Works on a dirty tree too: it compares the tree's state before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
state() { git status --porcelain --untracked-files=all; git diff; }
before=$(state | sha256sum)
go generate ./...
after=$(state | sha256sum)
if [ "$before" != "$after" ]; then
  echo "verify-generated: 'go generate ./...' changed the tree; run 'make generate' and commit:" >&2
  git status --short >&2
  exit 1
fi
echo "verify-generated: generated code is up to date"

#!/usr/bin/env bash
# make demo: start govn's central databases (and northd when built in), drive
# them with the real ovn-nbctl, show the result, then stop everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
GOVN=${GOVN:-bin/govn}
dir=$(mktemp -d /tmp/govn-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done; echo "demo: $1 did not appear" >&2; exit 1; }

say "starting govn nbdb and sbdb in $dir"
"$GOVN" nbdb --data-dir "$dir/nb" --log-level warn & pids+=($!)
"$GOVN" sbdb --data-dir "$dir/sb" --log-level warn & pids+=($!)
NB="unix:$dir/nb/ovnnb_db.sock"; SB="unix:$dir/sb/ovnsb_db.sock"
wait_sock "$dir/nb/ovnnb_db.sock"; wait_sock "$dir/sb/ovnsb_db.sock"

wait=""
if "$GOVN" northd --help >/dev/null 2>&1; then
  say "starting govn northd"
  "$GOVN" northd --nb "$NB" --sb "$SB" --log-level warn & pids+=($!)
  wait="--wait=sb"
fi

nbctl() { echo "\$ ovn-nbctl $*"; ovn-nbctl --db="$NB" $wait "$@"; }
say "building a network with the real ovn-nbctl"
nbctl ls-add web
nbctl lsp-add web web-1 -- lsp-set-addresses web-1 "00:00:00:00:01:01 10.0.1.11"
nbctl lsp-add web web-2 -- lsp-set-addresses web-2 "00:00:00:00:01:02 10.0.1.12"
nbctl acl-add web to-lport 1000 'outport == "web-2" && tcp.dst == 23' drop
nbctl lr-add edge
nbctl lrp-add edge edge-web 00:00:00:00:ff:01 10.0.1.1/24
nbctl lb-add web-vip 10.0.1.100:80 10.0.1.11:8080,10.0.1.12:8080 tcp

say "ovn-nbctl show"
ovn-nbctl --db="$NB" show
say "ovn-nbctl acl-list web"
ovn-nbctl --db="$NB" acl-list web

if [ -n "$wait" ]; then
  say "southbound: datapaths and port bindings written by govn northd"
  ovn-sbctl --db="$SB" --columns=logical_port,tunnel_key,mac list Port_Binding
  say "southbound logical flows for switch web (first 40 lines)"
  ovn-sbctl --db="$SB" lflow-list web | head -40
fi

if [ -x bin/govnctl ]; then
  say "govnctl lflow compile: the language northd and the controllers share"
  echo "\$ govnctl lflow compile --match 'ip4.src == {10.0.0.1, 10.0.0.2} && tcp.dst == {80, 443}' --actions 'next;'"
  bin/govnctl lflow compile --match 'ip4.src == {10.0.0.1, 10.0.0.2} && tcp.dst == {80, 443}' --actions 'next;' || true
fi
say "done: stopping the daemons started by this demo"

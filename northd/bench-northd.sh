#!/usr/bin/env bash
# make bench-northd: northd's benchmarks.
#  1. pure engine (no I/O): full recompute, cold start, one port added;
#  2. end to end: real NB/SB ovsdb-servers, the govn northd binary as its own
#     process, 100 switches x {1k, 5k, 10k} ports. Reported per size:
#     bulk-s            one NB transaction creating everything → ovn-nbctl --wait=sb sync returns
#     recompute-ms      full recompute (SIGHUP), measured by northd
#     lspadd-ms         median ovn-nbctl --wait=sb lsp-add + lsp-set-addresses (wall time)
#     nbctl-nowait-ms   the same command without --wait (ovn-nbctl's own cost)
#     lspadd-daemon-ms  the --wait=sb command through an ovn-nbctl daemon (ovn-nbctl --detach -u SOCK)
#     lspadd-direct-ms  port insert + nb_cfg bump through libovsdb until sb_cfg (northd's latency)
#     round-ms          northd's mean processing round during the port adds
#     lflows            Logical_Flow rows;  rss-MB / hwm-MB  northd VmRSS / VmHWM at the end
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
$GO test ./northd -run '^$' -bench . -benchtime "${BENCHTIME_PURE:-10x}" -count=1
$GO test ./northd/run -run '^$' -bench BenchmarkNorthd -benchtime 1x -count=1 -timeout 60m

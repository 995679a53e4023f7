#!/usr/bin/env bash
# govn-cluster.sh: run one member of a 3-member Raft cluster of govn's
# northbound or southbound database, or print the client remote string.
#
#   govn-cluster.sh nb|sb INDEX MEMBER1 MEMBER2 MEMBER3 [-- GOVN FLAGS...]
#       exec `govn nbdb|sbdb` as member INDEX (1..3). Member 1 creates the
#       cluster; members 2 and 3 join it (start member 1 first). Once a
#       member's database file exists these flags only matter for the
#       listeners: restarting a member rejoins with its stored state.
#   govn-cluster.sh remotes nb|sb MEMBER1 MEMBER2 MEMBER3
#       print tcp:IP:PORT,tcp:IP:PORT,tcp:IP:PORT for northd, the API,
#       ovn-nbctl --db=… and the chassis' external_ids:ovn-remote.
#
# MEMBER is IP (default ports: nb client 6641, Raft 6643; sb 6642 / 6644) or
# IP:CLIENT_PORT:RAFT_PORT (e.g. several members on one test host).
# Environment: GOVN (the govn binary, default govn), GOVN_DATA_DIR (default
# /var/lib/govn/nb or /var/lib/govn/sb).
set -euo pipefail

die() { echo "govn-cluster: $*" >&2; exit 2; }
usage() { die "usage: $0 nb|sb INDEX M1 M2 M3 [-- FLAGS...] | $0 remotes nb|sb M1 M2 M3"; }

# member DB SPEC -> "IP CLIENT_PORT RAFT_PORT"
member() {
	local db=$1 spec=$2 ip c r extra cport rport
	case "$db" in
	nb) cport=6641 rport=6643 ;;
	sb) cport=6642 rport=6644 ;;
	esac
	IFS=: read -r ip c r extra <<<"$spec"
	[ -z "${extra:-}" ] || die "member \"$spec\": want IP or IP:CLIENT_PORT:RAFT_PORT"
	[[ "$ip" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "member \"$spec\": \"$ip\" is not an IPv4 address"
	if [ -n "${c:-}" ] || [ -n "${r:-}" ]; then
		[[ "${c:-}" =~ ^[0-9]+$ && "${r:-}" =~ ^[0-9]+$ ]] || die "member \"$spec\": want IP:CLIENT_PORT:RAFT_PORT"
		cport=$c rport=$r
	fi
	echo "$ip $cport $rport"
}

checkdb() { [ "$1" = nb ] || [ "$1" = sb ] || die "database \"$1\": want nb or sb"; }

[ $# -ge 1 ] || usage
if [ "$1" = remotes ]; then
	[ $# -eq 5 ] || usage
	checkdb "$2"
	out=""
	for m in "$3" "$4" "$5"; do
		spec=$(member "$2" "$m")
		read -r ip cport _ <<<"$spec"
		out+="${out:+,}tcp:$ip:$cport"
	done
	echo "$out"
	exit 0
fi

[ $# -ge 5 ] || usage
db=$1 index=$2
checkdb "$db"
[[ "$index" =~ ^[123]$ ]] || die "INDEX \"$index\": want 1, 2 or 3"
members=("$3" "$4" "$5")
shift 5
if [ $# -gt 0 ]; then
	[ "$1" = -- ] || usage
	shift
fi

spec=$(member "$db" "${members[index - 1]}")
read -r ip cport rport <<<"$spec"
args=("${db}db" --data-dir "${GOVN_DATA_DIR:-/var/lib/govn/$db}"
	--remote "ptcp:$cport:$ip" --cluster-local "tcp:$ip:$rport")
if [ "$index" != 1 ]; then
	for i in 1 2 3; do
		[ "$i" != "$index" ] || continue
		spec=$(member "$db" "${members[i - 1]}")
		read -r mip _ mrport <<<"$spec"
		args+=(--cluster-remote "tcp:$mip:$mrport")
	done
fi
exec "${GOVN:-govn}" "${args[@]}" "$@"

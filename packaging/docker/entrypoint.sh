#!/usr/bin/env bash
# govn container entrypoint: one image, every role.
#
#   entrypoint.sh nbdb|sbdb|northd|api|controller|up [FLAGS...]
#       exec `govn ROLE FLAGS...` (the same command lines the e2e tests run).
#   entrypoint.sh chassis [CONTROLLER FLAGS...]
#       a hypervisor: start ovsdb-server and ovs-vswitchd (userspace datapath),
#       put the underlay device on the netdev bridge br-phy (its address moves
#       to br-phy, so OVS's native tunneling carries Geneve), create br-int and
#       run `govn controller FLAGS...`. SIGTERM stops the controller (which
#       unregisters the chassis), then ovs-vswitchd and ovsdb-server.
#   entrypoint.sh healthz PORT [PATH]
#       exit 0 if http://127.0.0.1:PORT/PATH (default /healthz) answers 200.
#   entrypoint.sh govnctl ARGS...
#
# chassis environment:
#   GOVN_SB_REMOTE     southbound database, e.g. tcp:172.28.0.12:6642 (required)
#   GOVN_SYSTEM_ID     chassis name (default: the hostname)
#   GOVN_UNDERLAY_DEV  underlay device (default eth0)
#   GOVN_ENCAP_IP      tunnel endpoint (default: the underlay device's IPv4 address)
#   OVS_RUNDIR, OVS_DBDIR, OVS_LOGDIR   Open vSwitch directories (defaults
#                      /var/run/openvswitch, /etc/openvswitch, /var/log/openvswitch)
set -euo pipefail

GOVN=${GOVN:-govn}
GOVNCTL=${GOVNCTL:-govnctl}
VSWITCH_SCHEMA=${VSWITCH_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}

die() { echo "govn-entrypoint: $*" >&2; exit 1; }

healthz() {
	local port=${1:?usage: healthz PORT [PATH]} path=${2:-/healthz} status
	exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
	read -r -t 5 _ status _ <&3 || exit 1
	exec 3<&-
	[ "$status" = 200 ] || { echo "GET $path: HTTP $status" >&2; exit 1; }
}

# ipv4_of DEV: the first IPv4 address/prefix of DEV.
ipv4_of() { ip -4 -o addr show dev "$1" | awk '{print $4; exit}'; }

chassis() {
	[ -n "${GOVN_SB_REMOTE:-}" ] || die "chassis: set GOVN_SB_REMOTE (e.g. tcp:172.28.0.12:6642)"
	local dev=${GOVN_UNDERLAY_DEV:-eth0}
	local sysid=${GOVN_SYSTEM_ID:-$(hostname)}
	export OVS_RUNDIR=${OVS_RUNDIR:-/var/run/openvswitch}
	export OVS_DBDIR=${OVS_DBDIR:-/etc/openvswitch}
	export OVS_LOGDIR=${OVS_LOGDIR:-/var/log/openvswitch}
	mkdir -p "$OVS_RUNDIR" "$OVS_DBDIR" "$OVS_LOGDIR"
	local db=$OVS_DBDIR/conf.db sock=$OVS_RUNDIR/db.sock
	# The underlay address: on the device at first start, on br-phy after a
	# restart of this script in the same network namespace.
	local cidr
	cidr=$(ipv4_of "$dev")
	[ -n "$cidr" ] || cidr=$(ipv4_of br-phy 2>/dev/null || true)
	[ -n "$cidr" ] || die "chassis: $dev has no IPv4 address"
	local encap=${GOVN_ENCAP_IP:-${cidr%/*}}
	local mac gw
	mac=$(cat "/sys/class/net/$dev/address")
	gw=$(ip -4 route show default dev "$dev" | awk '{print $3; exit}')

	# Open vSwitch, started as the e2e harness starts it (internal/ovstest),
	# and stopped whenever this script ends (also on a failed set-up step).
	stop_ovs() {
		ovs-appctl -t "$OVS_RUNDIR/ovs-vswitchd.ctl" --timeout=10 exit --cleanup >/dev/null 2>&1 || true
		ovs-appctl -t "$OVS_RUNDIR/ovsdb-server.ctl" --timeout=10 exit >/dev/null 2>&1 || true
	}
	trap stop_ovs EXIT
	[ -f "$db" ] || ovsdb-tool create "$db" "$VSWITCH_SCHEMA"
	ovsdb-server "$db" --remote="punix:$sock" \
		--unixctl="$OVS_RUNDIR/ovsdb-server.ctl" --pidfile="$OVS_RUNDIR/ovsdb-server.pid" \
		--detach --no-chdir -vconsole:off --log-file="$OVS_LOGDIR/ovsdb-server.log"
	ovs-vsctl --db="unix:$sock" --timeout=30 --no-wait init -- set Open_vSwitch . \
		"external_ids:system-id=\"$sysid\"" "external_ids:ovn-remote=\"$GOVN_SB_REMOTE\"" \
		external_ids:ovn-encap-type=geneve "external_ids:ovn-encap-ip=\"$encap\"" \
		external_ids:ovn-bridge-datapath-type=netdev
	ovs-vswitchd "unix:$sock" \
		--unixctl="$OVS_RUNDIR/ovs-vswitchd.ctl" --pidfile="$OVS_RUNDIR/ovs-vswitchd.pid" \
		--detach --no-chdir -vconsole:off --log-file="$OVS_LOGDIR/ovs-vswitchd.log"
	# br-phy (a NORMAL switch holding the underlay device) and br-int
	# (fail_mode=secure: forwards nothing without the controller's flows).
	ovs-vsctl --db="unix:$sock" --timeout=30 \
		--may-exist add-br br-phy -- set Bridge br-phy datapath_type=netdev "other_config:hwaddr=\"$mac\"" \
		-- --may-exist add-port br-phy "$dev" \
		-- --may-exist add-br br-int -- set Bridge br-int datapath_type=netdev fail_mode=secure \
		other_config:disable-in-band=true
	ip addr flush dev "$dev"
	ip addr replace "$cidr" dev br-phy
	ip link set br-phy up
	[ -z "$gw" ] || ip route replace default via "$gw" dev br-phy

	"$GOVN" controller --ovs "unix:$sock" --ovs-rundir "$OVS_RUNDIR" "$@" &
	local pid=$! rc=0
	signalled=0
	trap 'signalled=1; kill -TERM "$pid" 2>/dev/null || true' TERM INT
	wait "$pid" || rc=$?
	if [ "$signalled" = 1 ]; then
		# wait returned early for the trap: wait again for the controller's
		# own exit status (127: the first wait had it already).
		local rc2=0
		wait "$pid" || rc2=$?
		[ "$rc2" = 127 ] || rc=$rc2
	fi
	trap - TERM INT
	exit "$rc"
}

role=${1:-up}
[ $# -eq 0 ] || shift
case "$role" in
nbdb | sbdb | northd | api | controller | up) exec "$GOVN" "$role" "$@" ;;
chassis) chassis "$@" ;;
healthz) healthz "$@" ;;
govnctl) exec "$GOVNCTL" "$@" ;;
*) die "unknown role \"$role\": want nbdb, sbdb, northd, api, controller, up, chassis, healthz or govnctl" ;;
esac

// Package pinctrl is the chassis controller's packet-in handler: it opens a
// native OpenFlow 1.5 channel to br-int's management socket (see Conn),
// receives NXT_PACKET_IN2 messages raised by the controller() actions that
// lflow/action encodes, and acts on them: put_arp learns MAC_Binding rows in
// the southbound database, log counts and logs ACL hits.
//
// The handlers are pure (Handle* functions take a decoded packet-in and
// return values); Run is the I/O shell (connection with reconnect and
// backoff, SB writes, zap logs, Prometheus counters).
package pinctrl

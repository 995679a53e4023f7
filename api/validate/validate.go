// Package validate checks northbound values (addresses, ACLs, routes, load
// balancers, NAT, DHCP options) before anything is written. It is pure: it
// takes values and returns *Error values naming the offending field, so the
// API server and any other NB writer can share it.
package validate

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Error is one invalid field: Field is the API field name (e.g. "match",
// "addresses[1]"), Value the rejected input and Reason why.
type Error struct {
	Field  string
	Value  string
	Reason string
	Err    error // the underlying error, if any (e.g. the match parser's, with its position)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("invalid %s %q: %s", e.Field, e.Value, e.Reason)
}

func errf(field, value, format string, args ...any) *Error {
	return &Error{Field: field, Value: value, Reason: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error if it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Name checks a resource name: non-empty, printable, no white space.
func Name(field, s string) error {
	if s == "" {
		return errf(field, s, "must not be empty")
	}
	for i, r := range s {
		if r <= ' ' || r == 0x7f {
			return errf(field, s, "character %d (%q) is white space or a control character", i+1, r)
		}
	}
	return nil
}

// ParseMAC parses an Ethernet address written as six colon-separated hex octets.
func ParseMAC(field, s string) (net.HardwareAddr, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return nil, errf(field, s, "not an Ethernet address (want xx:xx:xx:xx:xx:xx)")
	}
	mac := make(net.HardwareAddr, 6)
	for i, p := range parts {
		if len(p) == 0 || len(p) > 2 {
			return nil, errf(field, s, "octet %d %q is not 1-2 hex digits", i+1, p)
		}
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return nil, errf(field, s, "octet %d %q is not hexadecimal", i+1, p)
		}
		mac[i] = byte(v)
	}
	return mac, nil
}

// MAC checks an Ethernet address.
func MAC(field, s string) error {
	_, err := ParseMAC(field, s)
	return err
}

// ParseIP parses an IPv4 or IPv6 address (no zone, no prefix).
func ParseIP(field, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, errf(field, s, "not an IP address: %s", trimNetip(err))
	}
	if a.Zone() != "" {
		return netip.Addr{}, errf(field, s, "IPv6 zones are not allowed")
	}
	return a.Unmap(), nil
}

// ParsePrefix parses IP/LEN; host bits may be set (10.0.0.1/24 is an address
// with its network), as in router port networks.
func ParsePrefix(field, s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		return netip.Prefix{}, errf(field, s, "not IP/prefix-length")
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errf(field, s, "not IP/prefix-length: %s", trimNetip(err))
	}
	return p, nil
}

// ParseIPOrPrefix parses an address or a prefix; an address is returned as a
// full-length prefix.
func ParseIPOrPrefix(field, s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return ParsePrefix(field, s)
	}
	a, err := ParseIP(field, s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseCIDR parses a network prefix whose host bits are zero (10.0.0.0/24).
func ParseCIDR(field, s string) (netip.Prefix, error) {
	p, err := ParsePrefix(field, s)
	if err != nil {
		return p, err
	}
	if p.Masked() != p {
		return netip.Prefix{}, errf(field, s, "host bits are set (the network is %s)", p.Masked())
	}
	return p, nil
}

func trimNetip(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

// Overlaps reports whether two networks share an address.
func Overlaps(a, b netip.Prefix) bool {
	return a.Masked().Overlaps(b.Masked())
}

// LSPTypes are the Logical_Switch_Port types of ovn-nb(5).
var LSPTypes = []string{"", "router", "localnet", "localport", "l2gateway", "vtep", "external", "virtual", "remote"}

// LSPType checks a logical switch port type.
func LSPType(field, s string) error {
	for _, t := range LSPTypes {
		if s == t {
			return nil
		}
	}
	return errf(field, s, "unknown port type (want one of: \"\", %s)", strings.Join(LSPTypes[1:], ", "))
}

// LSPAddress is one parsed entry of Logical_Switch_Port addresses.
type LSPAddress struct {
	Keyword string // "unknown", "router", "dynamic" or "" (static MAC)
	MAC     net.HardwareAddr
	IPs     []netip.Addr
	Dynamic bool // "MAC dynamic" or "dynamic [IP...]": addresses to be allocated
}

// ParseLSPAddress parses one addresses entry: "MAC [IP...]", "unknown",
// "router", "dynamic", "MAC dynamic" or "dynamic IP[ IP]".
func ParseLSPAddress(field, s string) (LSPAddress, error) {
	words := strings.Fields(s)
	if len(words) == 0 {
		return LSPAddress{}, errf(field, s, "empty entry")
	}
	switch words[0] {
	case "unknown", "router":
		if len(words) > 1 {
			return LSPAddress{}, errf(field, s, "%q takes nothing after it", words[0])
		}
		return LSPAddress{Keyword: words[0]}, nil
	case "dynamic":
		out := LSPAddress{Keyword: "dynamic", Dynamic: true}
		for _, w := range words[1:] {
			a, err := ParseIP(field, w)
			if err != nil {
				return LSPAddress{}, err
			}
			out.IPs = append(out.IPs, a)
		}
		return out, nil
	}
	mac, err := ParseMAC(field, words[0])
	if err != nil {
		return LSPAddress{}, errf(field, s, "want \"MAC [IP...]\", \"unknown\", \"router\" or \"dynamic\": %s", err.(*Error).Reason)
	}
	if mac[0]&1 != 0 {
		return LSPAddress{}, errf(field, s, "%s is a multicast Ethernet address", words[0])
	}
	out := LSPAddress{MAC: mac}
	if len(words) == 2 && words[1] == "dynamic" {
		out.Dynamic = true
		return out, nil
	}
	seen := map[netip.Addr]bool{}
	for _, w := range words[1:] {
		a, err := ParseIP(field, w)
		if err != nil {
			return LSPAddress{}, err
		}
		if seen[a] {
			return LSPAddress{}, errf(field, s, "%s is listed twice", a)
		}
		seen[a] = true
		out.IPs = append(out.IPs, a)
	}
	return out, nil
}

// LSPAddresses checks a port's addresses; field is the base field name.
func LSPAddresses(field string, addrs []string) ([]LSPAddress, error) {
	out := make([]LSPAddress, 0, len(addrs))
	for i, s := range addrs {
		a, err := ParseLSPAddress(fmt.Sprintf("%s[%d]", field, i), s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// PortSecurity checks port_security entries: "MAC [IP[/LEN]...]".
func PortSecurity(field string, entries []string) error {
	for i, s := range entries {
		f := fmt.Sprintf("%s[%d]", field, i)
		words := strings.Fields(s)
		if len(words) == 0 {
			return errf(f, s, "empty entry")
		}
		if _, err := ParseMAC(f, words[0]); err != nil {
			return errf(f, s, "want \"MAC [IP[/LEN]...]\": %s", err.(*Error).Reason)
		}
		for _, w := range words[1:] {
			if _, err := ParseIPOrPrefix(f, w); err != nil {
				return err
			}
		}
	}
	return nil
}

// AddressSetAddresses checks Address_Set addresses (IPs or prefixes of one
// family, as OVN requires within a set).
func AddressSetAddresses(field string, addrs []string) error {
	fam := 0
	for i, s := range addrs {
		f := fmt.Sprintf("%s[%d]", field, i)
		p, err := ParseIPOrPrefix(f, s)
		if err != nil {
			return err
		}
		bits := p.Addr().BitLen()
		if fam != 0 && bits != fam {
			return errf(f, s, "mixes IPv4 and IPv6 in one address set")
		}
		fam = bits
	}
	return nil
}

// Enum checks that s is one of allowed.
func Enum(field, s string, allowed ...string) error {
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return errf(field, s, "want one of: %s", strings.Join(allowed, ", "))
}

// ACLDirections, ACLActions and ACLSeverities are the allowed ACL enums.
var (
	ACLDirections = []string{"from-lport", "to-lport"}
	ACLActions    = []string{"allow", "allow-related", "allow-stateless", "drop", "reject", "pass"}
	ACLSeverities = []string{"alert", "warning", "notice", "info", "debug"}
)

// ACL holds the ACL columns that are checked without the database.
type ACL struct {
	Direction, Action, Match, Name, Severity string
	Priority                                 int
	Label                                    int64
	Tier                                     int
}

// MaxACLTier is the highest ACL tier (ACL.tier 0..3, as OVN).
const MaxACLTier = 3

// CheckACL checks an ACL's columns, the match with matchCheck (the
// logical-flow parser; nil skips it).
func CheckACL(a ACL, matchCheck func(string) error) error {
	if err := Enum("direction", a.Direction, ACLDirections...); err != nil {
		return err
	}
	if a.Priority < 0 || a.Priority > 32767 {
		return errf("priority", strconv.Itoa(a.Priority), "out of range 0..32767")
	}
	if err := Enum("action", a.Action, ACLActions...); err != nil {
		return err
	}
	if a.Tier < 0 || a.Tier > MaxACLTier {
		return errf("tier", strconv.Itoa(a.Tier), "out of range 0..%d", MaxACLTier)
	}
	if a.Severity != "" {
		if err := Enum("severity", a.Severity, ACLSeverities...); err != nil {
			return err
		}
	}
	if len(a.Name) > 63 {
		return errf("name", a.Name, "longer than 63 bytes")
	}
	if a.Label < 0 || a.Label > 4294967295 {
		return errf("label", strconv.FormatInt(a.Label, 10), "out of range 0..4294967295")
	}
	if strings.TrimSpace(a.Match) == "" {
		return errf("match", a.Match, "must not be empty")
	}
	if matchCheck != nil {
		if err := matchCheck(a.Match); err != nil {
			return &Error{Field: "match", Value: a.Match, Reason: err.Error(), Err: err}
		}
	}
	return nil
}

// RouterNetworks parses a router port's networks (IP/LEN each, at least
// one, no two overlapping).
func RouterNetworks(field string, nets []string) ([]netip.Prefix, error) {
	if len(nets) == 0 {
		return nil, errf(field, "", "at least one network (IP/LEN) is required")
	}
	out := make([]netip.Prefix, 0, len(nets))
	for i, s := range nets {
		f := fmt.Sprintf("%s[%d]", field, i)
		p, err := ParsePrefix(f, s)
		if err != nil {
			return nil, err
		}
		if p.Addr() == p.Masked().Addr() && p.Bits() < p.Addr().BitLen()-1 {
			return nil, errf(f, s, "is the network address, not a router address in it")
		}
		for j, q := range out {
			if Overlaps(p, q) {
				return nil, errf(f, s, "overlaps %s (%s[%d])", q, field, j)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// StaticRoute checks a static route's prefix, next hop and policy.
func StaticRoute(prefix, nexthop, policy string) error {
	p, err := ParseIPOrPrefix("ip_prefix", prefix)
	if err != nil {
		return err
	}
	if p.Masked() != p {
		return errf("ip_prefix", prefix, "host bits are set (the network is %s)", p.Masked())
	}
	if nexthop != "discard" {
		nh, err := ParseIP("nexthop", nexthop)
		if err != nil {
			return errf("nexthop", nexthop, "want an IP address or \"discard\"")
		}
		if nh.BitLen() != p.Addr().BitLen() {
			return errf("nexthop", nexthop, "address family differs from ip_prefix %s", prefix)
		}
	}
	if policy != "" {
		return Enum("policy", policy, "dst-ip", "src-ip")
	}
	return nil
}

// HostPort is "IP", "IP:PORT", "[IPv6]" or "[IPv6]:PORT" parsed.
type HostPort struct {
	IP   netip.Addr
	Port uint16 // 0: none
}

// ParseHostPort parses a load balancer VIP or backend.
func ParseHostPort(field, s string) (HostPort, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return HostPort{}, errf(field, s, "IPv6 zones are not allowed")
		}
		return HostPort{IP: a.Unmap()}, nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		a, err := ParseIP(field, s[1:len(s)-1])
		if err != nil {
			return HostPort{}, err
		}
		return HostPort{IP: a}, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return HostPort{}, errf(field, s, "want IP, IP:PORT or [IPv6]:PORT: %s", trimNetip(err))
	}
	if ap.Port() == 0 {
		return HostPort{}, errf(field, s, "port 0 is not allowed")
	}
	return HostPort{IP: ap.Addr().Unmap(), Port: ap.Port()}, nil
}

// LoadBalancer checks VIPs ("VIP[:PORT]" → "IP[:PORT],..."), the protocol
// and the selection fields.
func LoadBalancer(vips map[string]string, protocol string, selection []string) error {
	if protocol != "" {
		if err := Enum("protocol", protocol, "tcp", "udp", "sctp"); err != nil {
			return err
		}
	}
	for _, s := range selection {
		if err := Enum("selection_fields", s, "eth_src", "eth_dst", "ip_src", "ip_dst", "tp_src", "tp_dst"); err != nil {
			return err
		}
	}
	for vip, backends := range vips {
		f := fmt.Sprintf("vips[%s]", vip)
		v, err := ParseHostPort(f, vip)
		if err != nil {
			return err
		}
		if strings.TrimSpace(backends) == "" {
			continue // a VIP without backends is allowed (reject/empty_lb_backends)
		}
		for _, b := range strings.Split(backends, ",") {
			b = strings.TrimSpace(b)
			hp, err := ParseHostPort(f, b)
			if err != nil {
				return err
			}
			if hp.IP.BitLen() != v.IP.BitLen() {
				return errf(f, b, "backend address family differs from VIP %s", vip)
			}
			if (v.Port == 0) != (hp.Port == 0) {
				if v.Port == 0 {
					return errf(f, b, "backend has a port but VIP %s has none", vip)
				}
				return errf(f, b, "backend needs a port because VIP %s has one", vip)
			}
		}
	}
	return nil
}

// NAT checks a NAT rule's columns.
func NAT(typ, externalIP, logicalIP, logicalPort, externalMAC, portRange string) error {
	if err := Enum("type", typ, "snat", "dnat", "dnat_and_snat"); err != nil {
		return err
	}
	ext, err := ParseIP("external_ip", externalIP)
	if err != nil {
		return err
	}
	var lfam int
	if typ == "snat" {
		p, err := ParseIPOrPrefix("logical_ip", logicalIP)
		if err != nil {
			return err
		}
		if p.Masked() != p {
			return errf("logical_ip", logicalIP, "host bits are set (the network is %s)", p.Masked())
		}
		lfam = p.Addr().BitLen()
	} else {
		a, err := ParseIP("logical_ip", logicalIP)
		if err != nil {
			return err
		}
		lfam = a.BitLen()
	}
	if lfam != ext.BitLen() {
		return errf("logical_ip", logicalIP, "address family differs from external_ip %s", externalIP)
	}
	if (logicalPort == "") != (externalMAC == "") {
		return errf("logical_port", logicalPort, "logical_port and external_mac go together (distributed NAT)")
	}
	if logicalPort != "" && typ != "dnat_and_snat" {
		return errf("logical_port", logicalPort, "only dnat_and_snat rules can be distributed")
	}
	if externalMAC != "" {
		if err := MAC("external_mac", externalMAC); err != nil {
			return err
		}
	}
	if portRange != "" {
		lo, hi, ok := strings.Cut(portRange, "-")
		if !ok {
			hi = lo
		}
		l, err1 := strconv.ParseUint(lo, 10, 16)
		h, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || err2 != nil || l == 0 || l > h {
			return errf("external_port_range", portRange, "want PORT or LOW-HIGH within 1..65535")
		}
	}
	return nil
}

// DHCPOptions checks a DHCP_Options row: the CIDR and the options whose
// values have a fixed syntax.
func DHCPOptions(cidr string, options map[string]string) error {
	p, err := ParseCIDR("cidr", cidr)
	if err != nil {
		return err
	}
	for k, v := range options {
		f := "options[" + k + "]"
		switch k {
		case "server_mac", "mac":
			if err := MAC(f, v); err != nil {
				return err
			}
		case "server_id", "router":
			a, err := ParseIP(f, v)
			if err != nil {
				return err
			}
			if a.BitLen() != p.Addr().BitLen() {
				return errf(f, v, "address family differs from cidr %s", cidr)
			}
		case "lease_time", "mtu", "T1", "T2":
			if _, err := strconv.ParseUint(v, 10, 32); err != nil {
				return errf(f, v, "not a non-negative integer")
			}
		}
	}
	return nil
}

// Identifier checks a name that matches refer to ($address_set,
// @port_group): a letter or _ then letters, digits, _ or '.'.
func Identifier(field, s string) error {
	if s == "" {
		return errf(field, s, "must not be empty")
	}
	for i, r := range s {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && (r == '.' || (r >= '0' && r <= '9')))
		if !ok {
			return errf(field, s, "character %d (%q) is not allowed: a name used in matches starts with a letter or _ and has only letters, digits, _ and .", i+1, r)
		}
	}
	return nil
}

package harness

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// ExternalSpec describes an "external network": a physical network outside
// the overlay, reached from chassis through a provider bridge mapped to a
// physical network name (OVN's localnet ports and ovn-bridge-mappings).
type ExternalSpec struct {
	// Name is 1..8 of [a-z0-9], unique among pods and external networks;
	// the namespace of the external host is <Prefix>-<Name>.
	Name string
	// IP is the external host's address and subnet, e.g. 172.20.0.1/24.
	IP netip.Prefix
	// Gateway, if valid, is the external host's default route.
	Gateway netip.Addr
	// Physnet is the physical network name (a localnet port's
	// options:network_name), e.g. "physnet".
	Physnet string
	// Bridge is the provider bridge on each chassis (default "br-ex").
	Bridge string
	// Chassis are the chassis attached to the network (at least one). Each
	// gets the provider bridge (netdev, standalone: a plain L2 switch) and
	// "<Physnet>:<Bridge>" added to Open_vSwitch external_ids
	// ovn-bridge-mappings.
	Chassis []*Chassis
}

// External is an external network and the one host on it: a namespace
// holding a Linux bridge (br0, the host's address) with one veth per
// attached chassis, whose other end is a port of that chassis' provider
// bridge. Its namespace is torn down with the topology.
type External struct {
	Name    string
	Netns   string
	IP      netip.Prefix
	MAC     string // of br0
	Physnet string
	Bridge  string
	Chassis []*Chassis
	topo    *Topology
}

// AddExternal builds an external network (see ExternalSpec). Interfaces
// have MTU 1400 (replies to pods on other chassis cross Geneve) and TX
// checksum offload off (as in pods).
func (t *Topology) AddExternal(s ExternalSpec) (*External, error) {
	if !podName.MatchString(s.Name) {
		return nil, fmt.Errorf("external network name %q: want 1-8 of [a-z0-9]", s.Name)
	}
	if !s.IP.IsValid() {
		return nil, fmt.Errorf("external network %s: no IP", s.Name)
	}
	if s.Physnet == "" || strings.ContainsAny(s.Physnet, ":, ") {
		return nil, fmt.Errorf("external network %s: physnet %q: want a name without ':', ',' or spaces", s.Name, s.Physnet)
	}
	if len(s.Chassis) == 0 {
		return nil, fmt.Errorf("external network %s: no chassis", s.Name)
	}
	if s.Bridge == "" {
		s.Bridge = "br-ex"
	}
	e := &External{Name: s.Name, Netns: t.Prefix + "-" + s.Name, IP: s.IP, Physnet: s.Physnet, Bridge: s.Bridge,
		Chassis: s.Chassis, topo: t}
	if err := t.addNetns(e.Netns); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"ip", "-n", e.Netns, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", e.Netns, "link", "set", "br0", "mtu", "1400"},
	} {
		if err := run(args...); err != nil {
			return nil, fmt.Errorf("external %s: %w", s.Name, err)
		}
	}
	for _, c := range s.Chassis {
		// "x<name>" is the chassis end (a provider-bridge port), "<chassis
		// name>" the end in the external namespace.
		port := "x" + s.Name
		for _, args := range [][]string{
			{"ip", "-n", c.Netns, "link", "add", "name", port, "type", "veth", "peer", "name", c.Name, "netns", e.Netns},
			{"ip", "-n", c.Netns, "link", "set", "dev", port, "mtu", "1400", "up"},
			{"ip", "-n", e.Netns, "link", "set", "dev", c.Name, "mtu", "1400", "master", "br0", "up"},
			{"ip", "netns", "exec", e.Netns, "ethtool", "-K", c.Name, "tx", "off"},
		} {
			if err := run(args...); err != nil {
				return nil, fmt.Errorf("external %s: %w", s.Name, err)
			}
		}
		mappings, err := c.bridgeMappings()
		if err != nil {
			return nil, fmt.Errorf("external %s: %w", s.Name, err)
		}
		m := s.Physnet + ":" + s.Bridge
		for _, have := range mappings {
			if name, _, _ := strings.Cut(have, ":"); name == s.Physnet {
				return nil, fmt.Errorf("external %s: chassis %s already maps %s (%s)", s.Name, c.Name, s.Physnet, have)
			}
		}
		mappings = append(mappings, m)
		if _, err := c.OVS.Vsctl("--may-exist", "add-br", s.Bridge,
			"--", "set", "Bridge", s.Bridge, "datapath_type=netdev",
			"--", "add-port", s.Bridge, port,
			"--", "set", "Open_vSwitch", ".", "external_ids:ovn-bridge-mappings="+strings.Join(mappings, ",")); err != nil {
			return nil, fmt.Errorf("external %s: %w", s.Name, err)
		}
	}
	cmds := [][]string{
		{"ip", "-n", e.Netns, "addr", "add", s.IP.String(), "dev", "br0"},
		{"ip", "-n", e.Netns, "link", "set", "br0", "up"},
		{"ip", "netns", "exec", e.Netns, "ethtool", "-K", "br0", "tx", "off"},
	}
	if s.Gateway.IsValid() {
		cmds = append(cmds, []string{"ip", "-n", e.Netns, "route", "add", "default", "via", s.Gateway.String()})
	}
	for _, args := range cmds {
		if err := run(args...); err != nil {
			return nil, fmt.Errorf("external %s: %w", s.Name, err)
		}
	}
	out, err := e.Exec("cat", "/sys/class/net/br0/address")
	if err != nil {
		return nil, err
	}
	e.MAC = strings.TrimSpace(out)
	return e, nil
}

// bridgeMappings returns the chassis' ovn-bridge-mappings entries.
func (c *Chassis) bridgeMappings() ([]string, error) {
	out, err := c.OVS.Vsctl("--if-exists", "get", "Open_vSwitch", ".", "external_ids:ovn-bridge-mappings")
	if err != nil {
		return nil, err
	}
	v := strings.Trim(strings.TrimSpace(out), `"`)
	if v == "" {
		return nil, nil
	}
	return strings.Split(v, ","), nil
}

// Exec runs a command inside the external host's namespace.
func (e *External) Exec(args ...string) (string, error) { return execIn(e.Netns, args...) }

// Ping sends count echo requests from the external host (see Pod.Ping).
func (e *External) Ping(dst netip.Addr, count int) (PingResult, error) {
	return ping(e.Netns, e.Name, dst, count, 200*time.Millisecond)
}

// WaitReachable pings dst from the external host until one answer arrives
// or timeout passes.
func (e *External) WaitReachable(dst netip.Addr, timeout time.Duration) error {
	return waitReachable(e.Netns, e.Name, dst, timeout)
}

// Serve starts a server on the external host (see Topology.Serve) that
// answers with the external network's name.
func (e *External) Serve(proto string, port int) (*Server, error) {
	return e.topo.Serve(e.Netns, e.Name, proto, port)
}

// Request sends one request from the external host (see Pod.Request).
func (e *External) Request(proto string, dst netip.Addr, port int, timeout time.Duration) (Reply, error) {
	return request(e.Netns, e.Name, proto, dst, port, timeout)
}

// String is the external host's name and address.
func (e *External) String() string { return e.Name + " (" + e.IP.Addr().String() + ")" }

package validate

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestLSPAddresses(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // "" = ok, else substring of the error
	}{
		{"00:00:00:00:00:01", ""},
		{"00:00:00:00:00:01 10.0.0.1 fd00::1", ""},
		{"unknown", ""},
		{"router", ""},
		{"dynamic", ""},
		{"00:00:00:00:00:01 dynamic", ""},
		{"dynamic 10.0.0.5", ""},
		{"", "empty entry"},
		{"unknown 10.0.0.1", "takes nothing after it"},
		{"00:00:00:00:00", "not an Ethernet address"},
		{"00:00:00:00:00:0g", `octet 6 "0g" is not hexadecimal`},
		{"01:00:5e:00:00:01", "multicast"},
		{"00:00:00:00:00:01 10.0.0.256", "not an IP address"},
		{"00:00:00:00:00:01 10.0.0.1 10.0.0.1", "listed twice"},
		{"00:00:00:00:00:01 10.0.0.0/24", "not an IP address"},
		{"00:00:00:00:00:01 fe80::1%eth0", "zones"},
	} {
		_, err := ParseLSPAddress("addresses[0]", c.in)
		check(t, "ParseLSPAddress("+c.in+")", err, c.want)
	}
}

func check(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: unexpected error %v", what, err)
	case want != "" && err == nil:
		t.Errorf("%s: no error, want %q", what, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q lacks %q", what, err, want)
	case err != nil:
		var ve *Error
		if !errors.As(err, &ve) || ve.Field == "" || ve.Reason == "" {
			t.Errorf("%s: error %#v is not a field error", what, err)
		}
	}
}

func TestPortSecurityAndSets(t *testing.T) {
	check(t, "ps ok", PortSecurity("ps", []string{"00:00:00:00:00:01 10.0.0.1/32 fd00::/64"}), "")
	check(t, "ps bad prefix", PortSecurity("ps", []string{"00:00:00:00:00:01 10.0.0.0/33"}), "ps[0]")
	check(t, "ps no mac", PortSecurity("ps", []string{"10.0.0.1"}), "want \"MAC")
	check(t, "as ok", AddressSetAddresses("a", []string{"10.0.0.1", "10.1.0.0/16"}), "")
	check(t, "as mixed", AddressSetAddresses("a", []string{"10.0.0.1", "::1"}), "mixes")
	check(t, "identifier ok", Identifier("n", "pg_web.1"), "")
	check(t, "identifier digit", Identifier("n", "1pg"), "character 1")
	check(t, "identifier dash", Identifier("n", "pg-web"), "character 3")
	check(t, "name space", Name("n", "sw 0"), "white space")
}

func TestRouterNetworks(t *testing.T) {
	nets, err := RouterNetworks("networks", []string{"10.0.0.1/24", "fd00::1/64", "192.168.0.1/32"})
	if err != nil || len(nets) != 3 || nets[0] != netip.MustParsePrefix("10.0.0.1/24") {
		t.Fatalf("%v %v", nets, err)
	}
	_, err = RouterNetworks("networks", nil)
	check(t, "none", err, "at least one")
	_, err = RouterNetworks("networks", []string{"10.0.0.1/24", "10.0.0.200/25"})
	check(t, "overlap", err, "overlaps 10.0.0.1/24 (networks[0])")
	_, err = RouterNetworks("networks", []string{"10.0.0.0/24"})
	check(t, "network address", err, "network address")
	_, err = RouterNetworks("networks", []string{"10.0.0.1"})
	check(t, "no length", err, "not IP/prefix-length")
	if !Overlaps(netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("10.0.0.130/25")) ||
		Overlaps(netip.MustParsePrefix("10.0.0.1/25"), netip.MustParsePrefix("10.0.0.130/25")) {
		t.Error("Overlaps")
	}
}

func TestACL(t *testing.T) {
	ok := ACL{Direction: "to-lport", Action: "allow-related", Match: "ip4", Priority: 1000}
	check(t, "ok", CheckACL(ok, nil), "")
	bad := func(f func(*ACL)) ACL { a := ok; f(&a); return a }
	check(t, "dir", CheckACL(bad(func(a *ACL) { a.Direction = "in" }), nil), "from-lport, to-lport")
	check(t, "prio", CheckACL(bad(func(a *ACL) { a.Priority = -1 }), nil), "0..32767")
	check(t, "action", CheckACL(bad(func(a *ACL) { a.Action = "accept" }), nil), "want one of")
	check(t, "severity", CheckACL(bad(func(a *ACL) { a.Severity = "loud" }), nil), "alert")
	check(t, "label", CheckACL(bad(func(a *ACL) { a.Label = 1 << 33 }), nil), "0..4294967295")
	check(t, "empty match", CheckACL(bad(func(a *ACL) { a.Match = " " }), nil), "must not be empty")
	err := CheckACL(ok, func(string) error { return errors.New("1:3: syntax error") })
	check(t, "match checker", err, "1:3: syntax error")
	if ve, _ := AsError(err); ve.Field != "match" {
		t.Errorf("field %q", ve.Field)
	}
}

func TestRoutesLBNATDHCP(t *testing.T) {
	check(t, "route", StaticRoute("10.0.0.0/8", "192.168.0.1", ""), "")
	check(t, "route host", StaticRoute("10.0.0.1", "192.168.0.1", "src-ip"), "")
	check(t, "route discard", StaticRoute("10.0.0.0/8", "discard", ""), "")
	check(t, "route bits", StaticRoute("10.0.0.1/8", "192.168.0.1", ""), "host bits")
	check(t, "route fam", StaticRoute("10.0.0.0/8", "fd00::1", ""), "address family")
	check(t, "route nh", StaticRoute("10.0.0.0/8", "gw", ""), "discard")
	check(t, "route policy", StaticRoute("10.0.0.0/8", "10.1.1.1", "any"), "dst-ip, src-ip")

	check(t, "lb", LoadBalancer(map[string]string{"10.0.0.1:80": "10.0.1.1:8080, 10.0.1.2:8080", "[fd00::1]:80": "[fd00::2]:80", "10.0.0.2": "10.0.1.1"}, "udp", []string{"ip_src"}), "")
	check(t, "lb empty backends", LoadBalancer(map[string]string{"10.0.0.1:80": ""}, "", nil), "")
	check(t, "lb fam", LoadBalancer(map[string]string{"10.0.0.1:80": "[fd00::2]:80"}, "", nil), "address family")
	check(t, "lb port", LoadBalancer(map[string]string{"10.0.0.1": "10.0.1.1:80"}, "", nil), "has none")
	check(t, "lb port0", LoadBalancer(map[string]string{"10.0.0.1:0": "10.0.1.1:80"}, "", nil), "port 0")
	check(t, "lb sel", LoadBalancer(nil, "", []string{"vlan"}), "eth_src")

	check(t, "snat", NAT("snat", "172.16.0.1", "10.0.0.0/24", "", "", ""), "")
	check(t, "dnat_and_snat distributed", NAT("dnat_and_snat", "172.16.0.1", "10.0.0.5", "vm1", "00:00:00:00:00:05", "1000-2000"), "")
	check(t, "snat bits", NAT("snat", "172.16.0.1", "10.0.0.1/24", "", "", ""), "host bits")
	check(t, "dnat prefix", NAT("dnat", "172.16.0.1", "10.0.0.0/24", "", "", ""), "not an IP address")
	check(t, "nat fam", NAT("dnat", "172.16.0.1", "fd00::5", "", "", ""), "address family")
	check(t, "nat distributed snat", NAT("snat", "172.16.0.1", "10.0.0.5", "vm1", "00:00:00:00:00:05", ""), "only dnat_and_snat")
	check(t, "nat range", NAT("snat", "172.16.0.1", "10.0.0.0/24", "", "", "0-10"), "LOW-HIGH")

	check(t, "dhcp", DHCPOptions("10.0.0.0/24", map[string]string{"router": "10.0.0.1", "server_mac": "00:00:00:00:00:01", "lease_time": "3600"}), "")
	check(t, "dhcp cidr", DHCPOptions("10.0.0.0", nil), "not IP/prefix-length")
	check(t, "dhcp lease", DHCPOptions("10.0.0.0/24", map[string]string{"lease_time": "-1"}), "non-negative")
}

// FuzzParseLSPAddress checks that parsing never panics and that accepted
// entries have a MAC or a keyword.
func FuzzParseLSPAddress(f *testing.F) {
	for _, s := range []string{"00:00:00:00:00:01 10.0.0.1", "dynamic 10.0.0.1", "unknown", "router", "a:b:c:d:e:f fd00::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseLSPAddress("addresses[0]", s)
		if err == nil && a.Keyword == "" && len(a.MAC) != 6 {
			t.Fatalf("accepted %q without MAC or keyword: %+v", s, a)
		}
	})
}

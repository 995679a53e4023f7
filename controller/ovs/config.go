// Package ovs is the per-host controller's I/O layer towards the local Open
// vSwitch: the Open_vSwitch database (configuration, integration bridge,
// tunnel ports, VIF interfaces) through libovsdb, and the integration
// bridge's OpenFlow tables through ovs-ofctl (see OpenFlow).
package ovs

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Keys of Open_vSwitch.external_ids the controller reads (OVN's names).
const (
	KeySystemID         = "system-id"
	KeyRemote           = "ovn-remote"
	KeyEncapType        = "ovn-encap-type"
	KeyEncapIP          = "ovn-encap-ip"
	KeyBridge           = "ovn-bridge"
	KeyBridgeDatapath   = "ovn-bridge-datapath-type"
	KeyBridgeMappings   = "ovn-bridge-mappings"
	DefaultBridge       = "br-int"
	EncapGeneve         = "geneve"
	maxInterfaceNameLen = 15 // IFNAMSIZ-1: netdev bridges are tap devices
)

// Config is the chassis configuration from Open_vSwitch.external_ids.
type Config struct {
	SystemID     string     // chassis name
	Remotes      []string   // SB database remotes, e.g. "unix:/run/sb.sock", "tcp:10.0.0.1:6642"
	EncapType    string     // only "geneve"
	EncapIP      netip.Addr // this chassis' tunnel endpoint
	Bridge       string     // integration bridge, default br-int
	DatapathType string     // "" (OVS default), "system" or "netdev"
	// BridgeMappings maps physical network names to provider bridges.
	BridgeMappings map[string]string
}

// ConfigError is one invalid or missing external_ids key.
type ConfigError struct {
	Key, Value, Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("Open_vSwitch external_ids:%s=%q: %s", e.Key, e.Value, e.Reason)
}

// ParseConfig reads the chassis configuration from Open_vSwitch.external_ids.
// All problems are reported together (errors.Join of *ConfigError).
func ParseConfig(ext map[string]string) (Config, error) {
	var errs []error
	bad := func(key, reason string) { errs = append(errs, &ConfigError{Key: key, Value: ext[key], Reason: reason}) }
	c := Config{Bridge: DefaultBridge}

	c.SystemID = strings.TrimSpace(ext[KeySystemID])
	switch {
	case c.SystemID == "":
		bad(KeySystemID, "required: the chassis name")
	case strings.ContainsAny(c.SystemID, " \t\n,"):
		bad(KeySystemID, "must not contain spaces or commas")
	}

	if r := strings.TrimSpace(ext[KeyRemote]); r == "" {
		bad(KeyRemote, "required: the southbound database, e.g. unix:/run/govn/sb.sock or tcp:10.0.0.1:6642")
	} else {
		for _, rem := range strings.Split(r, ",") {
			rem = strings.TrimSpace(rem)
			if err := checkRemote(rem); err != nil {
				bad(KeyRemote, fmt.Sprintf("remote %q: %v", rem, err))
				continue
			}
			c.Remotes = append(c.Remotes, rem)
		}
	}

	switch t := strings.TrimSpace(ext[KeyEncapType]); t {
	case "":
		bad(KeyEncapType, "required: geneve")
	case EncapGeneve:
		c.EncapType = t
	default:
		bad(KeyEncapType, "unsupported encapsulation (only geneve)")
	}

	if s := strings.TrimSpace(ext[KeyEncapIP]); s == "" {
		bad(KeyEncapIP, "required: this chassis' tunnel endpoint address")
	} else if strings.Contains(s, ",") {
		bad(KeyEncapIP, "only one encapsulation address is supported")
	} else if ip, err := netip.ParseAddr(s); err != nil {
		bad(KeyEncapIP, err.Error())
	} else if ip.Zone() != "" || ip.IsUnspecified() || ip.IsMulticast() {
		bad(KeyEncapIP, "not a unicast address")
	} else {
		c.EncapIP = ip.Unmap()
	}

	if b, ok := ext[KeyBridge]; ok {
		b = strings.TrimSpace(b)
		if err := checkBridgeName(b); err != nil {
			bad(KeyBridge, err.Error())
		} else {
			c.Bridge = b
		}
	}

	switch d := strings.TrimSpace(ext[KeyBridgeDatapath]); d {
	case "", "system", "netdev":
		c.DatapathType = d
	default:
		bad(KeyBridgeDatapath, "want system or netdev")
	}

	if m := strings.TrimSpace(ext[KeyBridgeMappings]); m != "" {
		c.BridgeMappings = map[string]string{}
		for _, pair := range strings.Split(m, ",") {
			net, br, ok := strings.Cut(strings.TrimSpace(pair), ":")
			net, br = strings.TrimSpace(net), strings.TrimSpace(br)
			switch {
			case !ok || net == "":
				bad(KeyBridgeMappings, fmt.Sprintf("%q: want physnet:bridge", pair))
			case checkBridgeName(br) != nil:
				bad(KeyBridgeMappings, fmt.Sprintf("%q: %v", pair, checkBridgeName(br)))
			case c.BridgeMappings[net] != "":
				bad(KeyBridgeMappings, fmt.Sprintf("physical network %q mapped twice", net))
			default:
				c.BridgeMappings[net] = br
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

func checkRemote(r string) error {
	method, rest, ok := strings.Cut(r, ":")
	if !ok || rest == "" {
		return errors.New("want unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT")
	}
	switch method {
	case "unix":
		return nil
	case "tcp", "ssl":
		i := strings.LastIndexByte(rest, ':')
		if i <= 0 {
			return errors.New("missing port")
		}
		host := strings.Trim(rest[:i], "[]")
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("host: %v", err)
		}
		if p, err := strconv.ParseUint(rest[i+1:], 10, 16); err != nil || p == 0 {
			return fmt.Errorf("port %q: want 1-65535", rest[i+1:])
		}
		return nil
	default:
		return fmt.Errorf("unknown connection method %q", method)
	}
}

func checkBridgeName(b string) error {
	switch {
	case b == "":
		return errors.New("empty bridge name")
	case len(b) > maxInterfaceNameLen:
		return fmt.Errorf("bridge name %q longer than %d bytes", b, maxInterfaceNameLen)
	case strings.ContainsAny(b, " \t/,:"):
		return fmt.Errorf("bridge name %q contains a space, '/', ',' or ':'", b)
	}
	return nil
}

// String renders the configuration for logs, keys sorted.
func (c Config) String() string {
	nets := make([]string, 0, len(c.BridgeMappings))
	for k := range c.BridgeMappings {
		nets = append(nets, k)
	}
	sort.Strings(nets)
	maps := make([]string, len(nets))
	for i, k := range nets {
		maps[i] = k + ":" + c.BridgeMappings[k]
	}
	return fmt.Sprintf("system-id=%s remotes=%s encap=%s/%s bridge=%s datapath=%q mappings=%s",
		c.SystemID, strings.Join(c.Remotes, ","), c.EncapType, c.EncapIP, c.Bridge, c.DatapathType, strings.Join(maps, ","))
}

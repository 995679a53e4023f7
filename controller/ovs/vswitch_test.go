package ovs

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/govn/govn/internal/ovstest"
)

func TestParseConfig(t *testing.T) {
	good := map[string]string{
		KeySystemID: "ch1", KeyRemote: "unix:/run/sb.sock,tcp:10.0.0.1:6642", KeyEncapType: "geneve",
		KeyEncapIP: "172.16.0.1", KeyBridgeDatapath: "netdev", KeyBridgeMappings: "phys:br-ex, phys2:br-p2",
	}
	c, err := ParseConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	want := "system-id=ch1 remotes=unix:/run/sb.sock,tcp:10.0.0.1:6642 encap=geneve/172.16.0.1 bridge=br-int datapath=\"netdev\" mappings=phys:br-ex,phys2:br-p2"
	if c.String() != want {
		t.Fatalf("config = %s\nwant     %s", c, want)
	}
	for _, tc := range []struct {
		key, value, errPart string
	}{
		{KeySystemID, "", "external_ids:system-id=\"\": required"},
		{KeyRemote, "tcp:10.0.0.1", "missing port"},
		{KeyRemote, "tcp:nohost:66", "host:"},
		{KeyRemote, "http:x", "unknown connection method"},
		{KeyEncapType, "vxlan", "only geneve"},
		{KeyEncapIP, "1.2.3", "ParseAddr"},
		{KeyEncapIP, "1.2.3.4,1.2.3.5", "only one"},
		{KeyEncapIP, "0.0.0.0", "not a unicast"},
		{KeyBridge, "br-this-is-too-long", "longer than 15"},
		{KeyBridgeDatapath, "dpdk", "want system or netdev"},
		{KeyBridgeMappings, "phys", "want physnet:bridge"},
		{KeyBridgeMappings, "a:br1,a:br2", "mapped twice"},
	} {
		ext := map[string]string{}
		for k, v := range good {
			ext[k] = v
		}
		ext[tc.key] = tc.value
		_, err := ParseConfig(ext)
		var ce *ConfigError
		if err == nil || !strings.Contains(err.Error(), tc.errPart) || !errors.As(err, &ce) || ce.Key != tc.key {
			t.Errorf("%s=%q: err = %v, want *ConfigError on that key containing %q", tc.key, tc.value, err, tc.errPart)
		}
	}
	// Everything missing: every required key is reported at once.
	_, err = ParseConfig(nil)
	for _, k := range []string{KeySystemID, KeyRemote, KeyEncapType, KeyEncapIP} {
		if err == nil || !strings.Contains(err.Error(), "external_ids:"+k+"=") {
			t.Errorf("empty config: %v lacks %s", err, k)
		}
	}
}

func connect(t *testing.T, v *ovstest.OVS) *VSwitch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vs, err := Connect(ctx, v.DBRemote(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vs.Close)
	return vs
}

// eventually polls cond until it holds or 10 s pass, waking on changes.
func eventually(t *testing.T, vs *VSwitch, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-vs.Changes():
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestVSwitchConfigAndBridge(t *testing.T) {
	v := ovstest.Start(t, ovstest.Options{PrivateNetns: true, ExternalIDs: map[string]string{
		KeySystemID: "ch1", KeyRemote: "unix:/tmp/sb.sock", KeyEncapType: "geneve", KeyEncapIP: "172.16.0.1",
		KeyBridgeDatapath: "netdev",
	}})
	vs := connect(t, v)
	ctx := context.Background()
	cfg, err := vs.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SystemID != "ch1" || cfg.EncapIP != netip.MustParseAddr("172.16.0.1") || cfg.Bridge != "br-int" {
		t.Fatalf("config = %s", cfg)
	}
	changed, err := vs.EnsureBridge(ctx, cfg)
	if err != nil || !changed {
		t.Fatalf("EnsureBridge = %v, %v", changed, err)
	}
	out, err := v.Vsctl("get", "Bridge", "br-int", "fail_mode", "datapath_type", "other_config:disable-in-band")
	if err != nil || strings.Join(strings.Fields(out), " ") != `secure netdev "true"` {
		t.Fatalf("bridge columns = %q, %v", out, err)
	}
	// Idempotent: the second call changes nothing (wait until the cache has
	// seen our own write).
	eventually(t, vs, "bridge in cache", func() (bool, error) { b, err := vs.bridge(ctx, "br-int"); return b != nil, err })
	if changed, err := vs.EnsureBridge(ctx, cfg); err != nil || changed {
		t.Fatalf("second EnsureBridge = %v, %v", changed, err)
	}
	// Someone breaks the settings; we fix them and keep their other keys.
	if _, err := v.Vsctl("set", "Bridge", "br-int", "fail_mode=standalone", "other_config:disable-in-band=false", "other_config:foo=bar"); err != nil {
		t.Fatal(err)
	}
	eventually(t, vs, "standalone in cache", func() (bool, error) {
		b, err := vs.bridge(ctx, "br-int")
		return err == nil && b.FailMode != nil && *b.FailMode == "standalone", err
	})
	if changed, err := vs.EnsureBridge(ctx, cfg); err != nil || !changed {
		t.Fatalf("repair EnsureBridge = %v, %v", changed, err)
	}
	out, err = v.Vsctl("get", "Bridge", "br-int", "fail_mode", "other_config:disable-in-band", "other_config:foo")
	if err != nil || strings.Join(strings.Fields(out), " ") != `secure "true" bar` {
		t.Fatalf("after repair = %q, %v", out, err)
	}
	// ovs-vswitchd created it: the OpenFlow socket exists.
	if _, err := v.Ofctl("dump-flows", "br-int"); err != nil {
		t.Fatal(err)
	}
	// Configuration changes are seen.
	if _, err := v.Vsctl("set", "Open_vSwitch", ".", "external_ids:ovn-encap-ip=bad"); err != nil {
		t.Fatal(err)
	}
	eventually(t, vs, "bad encap ip reported", func() (bool, error) {
		_, err := vs.Config(ctx)
		return err != nil && strings.Contains(err.Error(), "ovn-encap-ip"), nil
	})
}

func TestTunnelsAndVIFs(t *testing.T) {
	v := ovstest.Start(t, ovstest.Options{PrivateNetns: true, Bridges: []string{"br-int"}})
	vs := connect(t, v)
	ctx := context.Background()
	// A port that looks like ours by name but is not tagged: never touched.
	if _, err := v.Vsctl("add-port", "br-int", "ovn-chassi-0", "--", "set", "Interface", "ovn-chassi-0",
		"type=geneve", "options:remote_ip=172.16.0.99"); err != nil {
		t.Fatal(err)
	}
	eventually(t, vs, "foreign port in cache", func() (bool, error) {
		st, err := vs.snapshot(ctx)
		return err == nil && st.names["ovn-chassi-0"], err
	})
	desired := []Tunnel{
		{Chassis: "chassis-2", RemoteIP: netip.MustParseAddr("172.16.0.2")},
		{Chassis: "chassis-3", RemoteIP: netip.MustParseAddr("172.16.0.3")},
		{Chassis: "other", RemoteIP: netip.MustParseAddr("172.16.0.4")},
	}
	if changed, err := vs.ReconcileTunnels(ctx, "br-int", desired); err != nil || !changed {
		t.Fatalf("ReconcileTunnels = %v, %v", changed, err)
	}
	// Name collisions on the 6-byte prefix get increasing suffixes; all get
	// an ofport from ovs-vswitchd.
	eventually(t, vs, "tunnel ofports", func() (bool, error) {
		m, err := vs.TunnelPorts(ctx, "br-int")
		return len(m) == 3, err
	})
	ts, err := vs.Tunnels(ctx, "br-int")
	if err != nil {
		t.Fatal(err)
	}
	gotNames := []string{ts[0].Port, ts[1].Port, ts[2].Port}
	if strings.Join(gotNames, " ") != "ovn-chassi-1 ovn-chassi-2 ovn-other-0" {
		t.Fatalf("tunnel names = %v", gotNames)
	}
	out, err := v.Vsctl("get", "Interface", ts[0].Port, "type", "options")
	if err != nil || strings.Join(strings.Fields(out), " ") != `geneve {csum="true", key=flow, remote_ip="172.16.0.2"}` {
		t.Fatalf("tunnel interface = %q, %v", out, err)
	}
	if changed, err := vs.ReconcileTunnels(ctx, "br-int", desired); err != nil || changed {
		t.Fatalf("second ReconcileTunnels = %v, %v", changed, err)
	}
	// Remote IP change and removal, in one transaction.
	desired = []Tunnel{{Chassis: "chassis-2", RemoteIP: netip.MustParseAddr("172.16.0.22")}}
	if changed, err := vs.ReconcileTunnels(ctx, "br-int", desired); err != nil || !changed {
		t.Fatalf("ReconcileTunnels = %v, %v", changed, err)
	}
	eventually(t, vs, "one tunnel left", func() (bool, error) {
		ts, err := vs.Tunnels(ctx, "br-int")
		return len(ts) == 1 && ts[0].RemoteIP == netip.MustParseAddr("172.16.0.22"), err
	})
	out, err = v.Vsctl("list-ports", "br-int")
	if err != nil || strings.Join(strings.Fields(out), " ") != "ovn-chassi-0 ovn-chassi-1" {
		t.Fatalf("ports = %q, %v (foreign port must survive)", out, err)
	}
	if _, err := vs.ReconcileTunnels(ctx, "br-int", []Tunnel{{Chassis: "x"}}); err == nil {
		t.Fatal("tunnel without remote IP accepted")
	}

	// VIFs: an internal port with an iface-id gets an ofport.
	if _, err := v.Vsctl("add-port", "br-int", "vif1", "--", "set", "Interface", "vif1", "type=internal",
		"external_ids:iface-id=lsp1", "external_ids:attached-mac=00:00:00:00:00:01"); err != nil {
		t.Fatal(err)
	}
	eventually(t, vs, "vif ofport", func() (bool, error) {
		vifs, err := vs.VIFs(ctx, "br-int")
		return len(vifs) == 1 && vifs[0].OFPort > 0 && vifs[0].IfaceID == "lsp1" && vifs[0].MAC == "00:00:00:00:00:01", err
	})
	// ovn-installed is set and cleared without touching other keys.
	if changed, err := vs.MarkVIFInstalled(ctx, "vif1", true); err != nil || !changed {
		t.Fatalf("MarkVIFInstalled(true) = %v, %v", changed, err)
	}
	out, err = v.Vsctl("get", "Interface", "vif1", "external_ids")
	if err != nil || !strings.Contains(out, `ovn-installed="true"`) || !strings.Contains(out, "iface-id=lsp1") {
		t.Fatalf("external_ids = %q, %v", out, err)
	}
	eventually(t, vs, "installed in cache", func() (bool, error) {
		changed, err := vs.MarkVIFInstalled(ctx, "vif1", true)
		return !changed, err
	})
	if changed, err := vs.MarkVIFInstalled(ctx, "vif1", false); err != nil || !changed {
		t.Fatalf("MarkVIFInstalled(false) = %v, %v", changed, err)
	}
	out, err = v.Vsctl("get", "Interface", "vif1", "external_ids")
	if err != nil || strings.Contains(out, "ovn-installed") || !strings.Contains(out, "iface-id=lsp1") {
		t.Fatalf("external_ids after clearing = %q, %v", out, err)
	}
	if _, err := vs.MarkVIFInstalled(ctx, "nosuch", true); err == nil {
		t.Fatal("missing interface accepted")
	}
	if _, err := vs.VIFs(ctx, "br-none"); !errors.Is(err, ErrNoBridge) {
		t.Fatalf("missing bridge: %v", err)
	}
}

// TestSnapshotMonitoredColumns: the cache holds only the columns the
// controller uses, so ovs-vswitchd's and operators' writes to other columns
// neither wake the controller nor rebuild the snapshot; a change to a used
// column does, and an unchanged database reuses the snapshot.
func TestSnapshotMonitoredColumns(t *testing.T) {
	v := ovstest.Start(t, ovstest.Options{PrivateNetns: true, Bridges: []string{"br-int"}})
	vs := connect(t, v)
	ctx := context.Background()
	if _, err := v.Vsctl("add-port", "br-int", "vif1", "--", "set", "Interface", "vif1", "type=internal",
		"external_ids:iface-id=lsp1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, vs, "vif ofport", func() (bool, error) {
		vifs, err := vs.VIFs(ctx, "br-int")
		return len(vifs) == 1 && vifs[0].OFPort > 0, err
	})
	s1, err := vs.snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := vs.rebuilds.Load()
	if s2, err := vs.snapshot(ctx); err != nil || s2 != s1 || vs.rebuilds.Load() != n {
		t.Fatalf("unchanged database: snapshot rebuilt (%p → %p, %d → %d rebuilds, %v)", s1, s2, n, vs.rebuilds.Load(), err)
	}
	for _, c := range s1.ifaces {
		if c.Name == "vif1" && (c.MACInUse != nil || c.Statistics != nil || c.AdminState != nil) {
			t.Fatalf("unmonitored columns cached: %+v", c)
		}
	}
	g := vs.gen.Load()
	// Unmonitored columns (and Open_vSwitch's next_cfg/cur_cfg, which every
	// ovs-vsctl bumps) first, then a monitored one: updates arrive in order,
	// so once the second is seen, the first would have been counted.
	if _, err := v.Vsctl("set", "Interface", "vif1", "other_config:foo=bar", "--", "set", "Port", "vif1", "other_config:x=y"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Vsctl("set", "Interface", "vif1", "external_ids:k=v"); err != nil {
		t.Fatal(err)
	}
	eventually(t, vs, "external_ids change seen", func() (bool, error) {
		st, err := vs.snapshot(ctx)
		if err != nil {
			return false, err
		}
		for _, c := range st.ifaces {
			if c.Name == "vif1" && c.ExternalIDs["k"] == "v" {
				return true, nil
			}
		}
		return false, nil
	})
	if d := vs.gen.Load() - g; d != 1 {
		t.Fatalf("%d cache changes for one change of a monitored column", d)
	}
	if vs.snap == s1 {
		t.Fatal("snapshot not rebuilt after a change")
	}
}

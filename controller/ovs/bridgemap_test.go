package ovs

import (
	"context"
	"strings"
	"testing"

	"github.com/govn/govn/internal/ovstest"
)

// TestReconcileLocalnet: patch pairs are created between br-int and the
// existing provider bridge only, get OpenFlow ports, are idempotent, and are
// removed (from both bridges) when no longer desired; the provider bridge
// is never created or deleted.
func TestReconcileLocalnet(t *testing.T) {
	v := ovstest.Start(t, ovstest.Options{PrivateNetns: true, Bridges: []string{"br-int", "br-ex"}})
	vs := connect(t, v)
	ctx := context.Background()
	desired := []LocalnetPatch{{LogicalPort: "ln-a", Bridge: "br-ex"}, {LogicalPort: "ln-b", Bridge: "br-missing"}}
	_, missing, changed, err := vs.ReconcileLocalnet(ctx, "br-int", desired)
	if err != nil || !changed || strings.Join(missing, ",") != "ln-b" {
		t.Fatalf("ReconcileLocalnet = missing %v, changed %v, %v; want ln-b missing, changed", missing, changed, err)
	}
	var ofports map[string]int
	eventually(t, vs, "localnet patch ofport", func() (bool, error) {
		m, _, ch, err := vs.ReconcileLocalnet(ctx, "br-int", desired)
		ofports = m
		return !ch && m["ln-a"] > 0, err
	})
	if len(ofports) != 1 {
		t.Fatalf("ofports = %v, want only ln-a", ofports)
	}
	for _, c := range []struct{ br, port, peer string }{
		{"br-int", "patch-br-int-to-ln-a", "patch-ln-a-to-br-int"},
		{"br-ex", "patch-ln-a-to-br-int", "patch-br-int-to-ln-a"},
	} {
		out, err := v.Vsctl("port-to-br", c.port)
		if err != nil || strings.TrimSpace(out) != c.br {
			t.Errorf("port %s on %q (%v), want %s", c.port, out, err, c.br)
		}
		out, err = v.Vsctl("get", "Interface", c.port, "type", "options:peer")
		if err != nil || strings.Join(strings.Fields(out), " ") != "patch "+c.peer {
			t.Errorf("interface %s = %q (%v), want patch peer %s", c.port, out, err, c.peer)
		}
		out, err = v.Vsctl("get", "Port", c.port, "external_ids:"+LocalnetPortKey)
		if err != nil || strings.Trim(strings.TrimSpace(out), `"`) != "ln-a" {
			t.Errorf("port %s external_ids = %q (%v)", c.port, out, err)
		}
	}
	if out, _ := v.Vsctl("list-br"); strings.Contains(out, "br-missing") {
		t.Fatalf("provider bridge created: %s", out)
	}
	// The provider bridge appears: its pair is made.
	if out, err := v.Vsctl("add-br", "br-missing", "--", "set", "Bridge", "br-missing", "datapath_type=netdev"); err != nil {
		t.Fatal(err, out)
	}
	eventually(t, vs, "second pair", func() (bool, error) {
		m, missing, _, err := vs.ReconcileLocalnet(ctx, "br-int", desired)
		return len(missing) == 0 && m["ln-b"] > 0 && m["ln-a"] == ofports["ln-a"], err
	})
	// Nothing desired: every pair goes, the bridges stay.
	if _, _, changed, err := vs.ReconcileLocalnet(ctx, "br-int", nil); err != nil || !changed {
		t.Fatalf("remove: changed %v, %v", changed, err)
	}
	eventually(t, vs, "pairs removed", func() (bool, error) {
		m, _, ch, err := vs.ReconcileLocalnet(ctx, "br-int", nil)
		return !ch && len(m) == 0, err
	})
	out, err := v.Vsctl("show")
	if err != nil || strings.Contains(out, "patch-") || !strings.Contains(out, "br-ex") || !strings.Contains(out, "br-missing") {
		t.Fatalf("after removal: %v\n%s", err, out)
	}
	// The integration bridge as provider bridge is refused.
	if _, _, _, err := vs.ReconcileLocalnet(ctx, "br-int", []LocalnetPatch{{LogicalPort: "x", Bridge: "br-int"}}); err == nil {
		t.Fatal("provider bridge = br-int accepted")
	}
}

// Package run is govn controller's I/O shell: it reads the chassis
// configuration from the local Open_vSwitch database, registers the chassis
// in the southbound database, claims the Port_Bindings of local interfaces,
// creates Geneve tunnels to the other chassis, translates the logical flows
// of the local datapaths and keeps br-int's OpenFlow tables equal to them,
// and acknowledges nb_cfg. The decisions are made by the pure packages
// (controller/binding, controller/physical, controller/translate,
// controller/ofctrl); this package only moves data between them and the
// databases and switch.
package run

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/ovn-kubernetes/libovsdb/client"
	"go.uber.org/zap"

	"github.com/govn/govn/controller/ovs"
	"github.com/govn/govn/controller/ovs/vswitchd"
)

// Options configure a controller. Empty override fields mean "use the
// Open_vSwitch external_ids value", exactly as ovn-controller reads them.
type Options struct {
	// OVS is the local Open_vSwitch database, e.g.
	// "unix:/var/run/openvswitch/db.sock".
	OVS string
	// RunDir is where the integration bridge's OpenFlow management socket
	// (<bridge>.mgmt) lives; default: $OVS_RUNDIR, else the directory of
	// the OVS unix socket.
	RunDir string

	// Overrides of Open_vSwitch external_ids keys.
	SystemID, Remote, EncapType, EncapIP, Bridge, DatapathType, BridgeMappings string

	// Hostname is reported in Chassis.hostname (default os.Hostname()).
	Hostname string
	// MetricsAddr serves /metrics and /healthz ("" disables).
	MetricsAddr string
	// KeepOnExit keeps the Chassis registration and port claims when the
	// context ends (for a restart); by default they are removed.
	KeepOnExit bool
	// Conditional enables conditional monitoring of the southbound
	// Port_Binding, Logical_Flow, Multicast_Group and MAC_Binding tables
	// (only the local datapaths). Default true in the command.
	Conditional bool
	// Resync is the period of a full reconcile even without changes
	// (0: 30s).
	Resync time.Duration

	Log *zap.Logger
}

// overrides returns the external_ids keys the options override.
func (o *Options) overrides() map[string]string {
	m := map[string]string{}
	for k, v := range map[string]string{
		ovs.KeySystemID: o.SystemID, ovs.KeyRemote: o.Remote, ovs.KeyEncapType: o.EncapType,
		ovs.KeyEncapIP: o.EncapIP, ovs.KeyBridge: o.Bridge, ovs.KeyBridgeDatapath: o.DatapathType,
		ovs.KeyBridgeMappings: o.BridgeMappings,
	} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}

// mergeConfig applies the overrides to the database's external_ids and
// parses the result.
func mergeConfig(ext map[string]string, o *Options) (ovs.Config, error) {
	m := make(map[string]string, len(ext)+7)
	for k, v := range ext {
		m[k] = v
	}
	for k, v := range o.overrides() {
		m[k] = v
	}
	return ovs.ParseConfig(m)
}

// runDir resolves Options.RunDir.
func (o *Options) runDir() (string, error) {
	if o.RunDir != "" {
		return o.RunDir, nil
	}
	if d := os.Getenv("OVS_RUNDIR"); d != "" {
		return d, nil
	}
	if p, ok := strings.CutPrefix(o.OVS, "unix:"); ok {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("cannot tell where %s.mgmt lives: set --ovs-rundir or OVS_RUNDIR", o.Bridge)
}

// DefaultOVS is the local vswitch database socket: $OVS_RUNDIR/db.sock,
// else /var/run/openvswitch/db.sock.
func DefaultOVS() string {
	d := os.Getenv("OVS_RUNDIR")
	if d == "" {
		d = "/var/run/openvswitch"
	}
	return "unix:" + filepath.Join(d, "db.sock")
}

// extIDsReader reads Open_vSwitch.external_ids through its own small
// libovsdb client (controller/ovs parses them but does not expose the raw
// map, which the command-line overrides need).
type extIDsReader struct {
	c client.Client
}

func newExtIDsReader(ctx context.Context, endpoint string) (*extIDsReader, error) {
	m, err := vswitchd.FullDatabaseModel()
	if err != nil {
		return nil, err
	}
	c, err := client.NewOVSDBClient(m, client.WithEndpoint(endpoint), client.WithReconnect(5*time.Second, backoff.NewExponentialBackOff()))
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connect to Open_vSwitch database %s: %w", endpoint, err)
	}
	if _, err := c.Monitor(ctx, c.NewMonitor(client.WithTable(&vswitchd.OpenvSwitch{}))); err != nil {
		c.Close()
		return nil, fmt.Errorf("monitor Open_vSwitch database %s: %w", endpoint, err)
	}
	return &extIDsReader{c: c}, nil
}

func (r *extIDsReader) read(ctx context.Context) (map[string]string, error) {
	var rows []vswitchd.OpenvSwitch
	if err := r.c.List(ctx, &rows); err != nil {
		return nil, err
	}
	if len(rows) != 1 {
		return nil, fmt.Errorf("Open_vSwitch table has %d rows, want 1 (run ovs-vsctl init?)", len(rows))
	}
	return rows[0].ExternalIDs, nil
}

func (r *extIDsReader) close() { r.c.Close() }

// bridgeMappings renders mappings as "net:br,net2:br2" (sorted).
func bridgeMappings(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+":"+m[k])
	}
	return strings.Join(parts, ",")
}

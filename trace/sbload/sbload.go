// Package sbload reads a trace.Snapshot from a live OVN southbound database
// (and, for tests and demos, writes one into it). It is the I/O shell of the
// pure trace package.
package sbload

import (
	"context"
	"fmt"
	"sort"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
	"github.com/govn/govn/sbdb"
	"github.com/govn/govn/trace"
)

// Tables are the southbound tables a snapshot needs; Connect monitors only
// these.
var Tables = []string{
	sbdb.DatapathBindingTable, sbdb.PortBindingTable, sbdb.MulticastGroupTable, sbdb.LogicalFlowTable,
	sbdb.LogicalDPGroupTable, sbdb.AddressSetTable, sbdb.PortGroupTable, sbdb.MACBindingTable, sbdb.ChassisTable,
	sbdb.LoadBalancerTable,
}

// Connect opens a southbound client that monitors Tables.
func Connect(ctx context.Context, remotes []string, opts ...ovsdbclient.Option) (*ovsdbclient.Client, error) {
	return sbdb.NewClient(ctx, remotes, append(opts, ovsdbclient.WithTables(Tables...))...)
}

// Load builds a snapshot from the client's cache (the client must monitor
// Tables). The snapshot is sorted (trace.Snapshot.Sort).
func Load(ctx context.Context, c *ovsdbclient.Client) (*trace.Snapshot, error) {
	var (
		dps    []sbdb.DatapathBinding
		pbs    []sbdb.PortBinding
		mcs    []sbdb.MulticastGroup
		lfs    []sbdb.LogicalFlow
		groups []sbdb.LogicalDPGroup
		ases   []sbdb.AddressSet
		pgs    []sbdb.PortGroup
		macs   []sbdb.MACBinding
		chs    []sbdb.Chassis
		lbs    []sbdb.LoadBalancer
	)
	for _, l := range []struct {
		name string
		dst  any
	}{{"Datapath_Binding", &dps}, {"Port_Binding", &pbs}, {"Multicast_Group", &mcs}, {"Logical_Flow", &lfs},
		{"Logical_DP_Group", &groups}, {"Address_Set", &ases}, {"Port_Group", &pgs}, {"MAC_Binding", &macs}, {"Chassis", &chs},
		{"Load_Balancer", &lbs}} {
		if err := c.List(ctx, l.dst); err != nil {
			return nil, fmt.Errorf("list %s: %w", l.name, err)
		}
	}
	s := &trace.Snapshot{AddressSets: map[string][]string{}, PortGroups: map[string][]string{}}
	for _, d := range dps {
		_, router := d.ExternalIDs["logical-router"]
		s.Datapaths = append(s.Datapaths, trace.Datapath{ID: d.UUID, Name: d.ExternalIDs["name"], Key: uint32(d.TunnelKey),
			Router: router, ExternalIDs: d.ExternalIDs})
	}
	chassis := map[string]string{}
	for _, ch := range chs {
		chassis[ch.UUID] = ch.Name
	}
	portName := map[string]string{}
	for _, p := range pbs {
		portName[p.UUID] = p.LogicalPort
		tp := trace.Port{Name: p.LogicalPort, Datapath: p.Datapath, Key: uint32(p.TunnelKey), Type: p.Type,
			Options: p.Options, MAC: p.MAC}
		if p.Chassis != nil {
			tp.Chassis = chassis[*p.Chassis]
		}
		s.Ports = append(s.Ports, tp)
	}
	for _, g := range mcs {
		mg := trace.MulticastGroup{Name: g.Name, Datapath: g.Datapath, Key: uint32(g.TunnelKey)}
		for _, m := range g.Ports {
			if n, ok := portName[m]; ok {
				mg.Ports = append(mg.Ports, n)
			}
		}
		sort.Strings(mg.Ports)
		s.MulticastGroups = append(s.MulticastGroups, mg)
	}
	dpGroups := map[string][]string{}
	for _, g := range groups {
		dpGroups[g.UUID] = g.Datapaths
	}
	for _, f := range lfs {
		tf := trace.Flow{UUID: f.UUID, Pipeline: f.Pipeline, Table: f.TableID, Priority: f.Priority, Match: f.Match,
			Actions: f.Actions, ExternalIDs: f.ExternalIDs}
		if f.LogicalDatapath != nil {
			tf.Datapaths = append(tf.Datapaths, *f.LogicalDatapath)
		}
		if f.LogicalDpGroup != nil {
			tf.Datapaths = append(tf.Datapaths, dpGroups[*f.LogicalDpGroup]...)
		}
		if len(tf.Datapaths) == 0 {
			continue // applies to no datapath
		}
		s.Flows = append(s.Flows, tf)
	}
	for _, a := range ases {
		s.AddressSets[a.Name] = a.Addresses
	}
	for _, g := range pgs {
		s.PortGroups[g.Name] = g.Ports
	}
	for _, m := range macs {
		s.MACBindings = append(s.MACBindings, trace.MACBinding{Datapath: m.Datapath, Port: m.LogicalPort, IP: m.IP, MAC: m.MAC})
	}
	for _, l := range lbs {
		tl := trace.LoadBalancer{Name: l.Name, VIPs: l.Vips, Options: l.Options, Datapaths: append([]string(nil), l.Datapaths...)}
		if l.Protocol != nil {
			tl.Protocol = string(*l.Protocol)
		}
		if l.DatapathGroup != nil {
			tl.Datapaths = append(tl.Datapaths, dpGroups[*l.DatapathGroup]...)
		}
		s.LoadBalancers = append(s.LoadBalancers, tl)
	}
	s.Sort()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("southbound database is inconsistent: %w", err)
	}
	return s, nil
}

// ConnectNB opens a northbound client that monitors only the ACL table
// (for LoadACLs).
func ConnectNB(ctx context.Context, remotes []string, opts ...ovsdbclient.Option) (*ovsdbclient.Client, error) {
	return nbdb.NewClient(ctx, remotes, append(opts, ovsdbclient.WithTables(nbdb.ACLTable))...)
}

// LoadACLs reads the northbound ACLs into s.ACLs, so trace names them in
// drop reasons as their authors wrote them.
func LoadACLs(ctx context.Context, c *ovsdbclient.Client, s *trace.Snapshot) error {
	var acls []nbdb.ACL
	if err := c.List(ctx, &acls); err != nil {
		return fmt.Errorf("list ACL: %w", err)
	}
	s.ACLs = make(map[string]trace.ACL, len(acls))
	for _, a := range acls {
		ta := trace.ACL{Direction: a.Direction, Priority: a.Priority, Match: a.Match, Action: a.Action}
		if a.Name != nil {
			ta.Name = *a.Name
		}
		s.ACLs[a.UUID] = ta
	}
	return nil
}

// StoreOps appends the operations that insert snapshot s into an (empty)
// southbound database: datapaths (external_ids:name, plus logical-switch or
// logical-router so OVN's tools know their kind), ports, multicast groups,
// logical flows (a Logical_DP_Group for flows on several datapaths),
// address sets, port groups, MAC bindings and load balancers. Snapshot IDs and flow UUIDs
// are not kept: the database assigns its own.
func StoreOps(c *ovsdbclient.Client, ops []ovsdb.Operation, s *trace.Snapshot) ([]ovsdb.Operation, error) {
	if err := s.Validate(); err != nil {
		return ops, err
	}
	dpUUID := map[string]string{}
	var err error
	for _, d := range s.Datapaths {
		ext := map[string]string{}
		for k, v := range d.ExternalIDs {
			ext[k] = v
		}
		if d.Name != "" {
			ext["name"] = d.Name
		}
		row := &sbdb.DatapathBinding{UUID: ovsdbclient.NamedUUID(), TunnelKey: int(d.Key), ExternalIDs: ext}
		dpUUID[d.ID] = row.UUID
		if ops, err = ovsdbclient.CreateOps(c, ops, row); err != nil {
			return ops, err
		}
	}
	portUUID := map[string]string{}
	for _, p := range s.Ports {
		row := &sbdb.PortBinding{UUID: ovsdbclient.NamedUUID(), LogicalPort: p.Name, Datapath: dpUUID[p.Datapath],
			TunnelKey: int(p.Key), Type: p.Type, Options: p.Options, MAC: p.MAC}
		portUUID[p.Name] = row.UUID
		if ops, err = ovsdbclient.CreateOps(c, ops, row); err != nil {
			return ops, err
		}
	}
	for _, g := range s.MulticastGroups {
		row := &sbdb.MulticastGroup{UUID: ovsdbclient.NamedUUID(), Name: g.Name, Datapath: dpUUID[g.Datapath], TunnelKey: int(g.Key)}
		for _, m := range g.Ports {
			row.Ports = append(row.Ports, portUUID[m])
		}
		if ops, err = ovsdbclient.CreateOps(c, ops, row); err != nil {
			return ops, err
		}
	}
	for _, f := range s.Flows {
		row := &sbdb.LogicalFlow{UUID: ovsdbclient.NamedUUID(), Pipeline: f.Pipeline, TableID: f.Table, Priority: f.Priority,
			Match: f.Match, Actions: f.Actions, ExternalIDs: f.ExternalIDs}
		if len(f.Datapaths) == 1 {
			u := dpUUID[f.Datapaths[0]]
			row.LogicalDatapath = &u
		} else {
			g := &sbdb.LogicalDPGroup{UUID: ovsdbclient.NamedUUID()}
			for _, d := range f.Datapaths {
				g.Datapaths = append(g.Datapaths, dpUUID[d])
			}
			if ops, err = ovsdbclient.CreateOps(c, ops, g); err != nil {
				return ops, err
			}
			row.LogicalDpGroup = &g.UUID
		}
		if ops, err = ovsdbclient.CreateOps(c, ops, row); err != nil {
			return ops, err
		}
	}
	for _, name := range sortedKeys(s.AddressSets) {
		row := &sbdb.AddressSet{UUID: ovsdbclient.NamedUUID(), Name: name, Addresses: s.AddressSets[name]}
		if ops, err = ovsdbclient.CreateOps(c, ops, row); err != nil {
			return ops, err
		}
	}
	for _, name := range sortedKeys(s.PortGroups) {
		row := &sbdb.PortGroup{UUID: ovsdbclient.NamedUUID(), Name: name, Ports: s.PortGroups[name]}
		if ops, err = ovsdbclient.CreateOps(c, ops, row); err != nil {
			return ops, err
		}
	}
	for _, m := range s.MACBindings {
		row := &sbdb.MACBinding{UUID: ovsdbclient.NamedUUID(), Datapath: dpUUID[m.Datapath], LogicalPort: m.Port, IP: m.IP, MAC: m.MAC}
		if ops, err = ovsdbclient.CreateOps(c, ops, row); err != nil {
			return ops, err
		}
	}
	for _, l := range s.LoadBalancers {
		row := &sbdb.LoadBalancer{UUID: ovsdbclient.NamedUUID(), Name: l.Name, Vips: l.VIPs, Options: l.Options}
		if l.Protocol != "" {
			p := sbdb.LoadBalancerProtocol(l.Protocol)
			row.Protocol = &p
		}
		for _, d := range l.Datapaths {
			row.Datapaths = append(row.Datapaths, dpUUID[d])
		}
		if ops, err = ovsdbclient.CreateOps(c, ops, row); err != nil {
			return ops, err
		}
	}
	return ops, nil
}

func sortedKeys(m map[string][]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

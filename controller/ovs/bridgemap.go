package ovs

import (
	"context"
	"fmt"
	"sort"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/govn/govn/controller/ovs/vswitchd"
)

// LocalnetPortKey is the external_ids key on both Ports of a localnet
// patch-port pair: the localnet logical port it serves.
const LocalnetPortKey = "ovn-localnet-port"

// LocalnetPatch is a patch-port pair between the integration bridge and a
// provider bridge (ovn-bridge-mappings) for one localnet logical port.
type LocalnetPatch struct {
	LogicalPort string // the localnet Port_Binding's logical_port
	Bridge      string // the provider bridge
}

// LocalnetPatchNames returns the integration-bridge side and the provider
// side port names of lport's patch pair.
func LocalnetPatchNames(intBridge, lport string) (intSide, provSide string) {
	return "patch-" + intBridge + "-to-" + lport, "patch-" + lport + "-to-" + intBridge
}

// ReconcileLocalnet makes our localnet patch-port pairs exactly the desired
// ones, in one transaction: a missing pair is created (both Interfaces of
// type patch, options:peer naming each other; both Ports tagged with our
// owner and LocalnetPortKey), pairs no longer desired are removed from
// whichever bridge holds them. Provider bridges are the operator's, never
// created or deleted here: a desired pair whose bridge does not exist is not
// made (its logical port is reported in missing) until the bridge appears.
// When it changed the database, changed is true and ofports is nil (OVS
// assigns the new OpenFlow ports asynchronously: call again after the
// change is seen); otherwise ofports holds the OpenFlow port of the
// integration-bridge side of each pair, by logical port.
func (v *VSwitch) ReconcileLocalnet(ctx context.Context, intBridge string, desired []LocalnetPatch) (ofports map[string]int, missing []string, changed bool, err error) {
	st, err := v.snapshot(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	portBridge := map[string]*vswitchd.Bridge{}
	for _, b := range st.bridges {
		for _, pu := range b.Ports {
			portBridge[pu] = b
		}
	}
	brByName, ifByUUID, names := st.bridges, st.ifaces, st.names
	ib := brByName[intBridge]
	if ib == nil {
		return nil, nil, false, fmt.Errorf("bridge %s: %w", intBridge, ErrNoBridge)
	}
	want := map[string]LocalnetPatch{}
	for _, d := range desired {
		if d.LogicalPort == "" || d.Bridge == "" {
			return nil, nil, false, fmt.Errorf("localnet patch: empty logical port or bridge in %+v", d)
		}
		if d.Bridge == intBridge {
			return nil, nil, false, fmt.Errorf("localnet port %s: provider bridge is the integration bridge %s", d.LogicalPort, intBridge)
		}
		want[d.LogicalPort] = d
	}

	// What exists: our ports by logical port and side.
	type side struct {
		port *vswitchd.Port
		br   *vswitchd.Bridge
	}
	have := map[string][2]*side{} // [0] integration side, [1] provider side
	del := map[*vswitchd.Bridge][]string{}
	for _, p := range st.ports {
		lp := p.ExternalIDs[LocalnetPortKey]
		if p.ExternalIDs[OwnerKey] != OwnerValue || lp == "" {
			continue
		}
		br := portBridge[p.UUID]
		if br == nil {
			continue
		}
		intName, provName := LocalnetPatchNames(intBridge, lp)
		d, ok := want[lp]
		h := have[lp]
		switch {
		case ok && br == ib && p.Name == intName && h[0] == nil:
			h[0] = &side{p, br}
		case ok && br.Name == d.Bridge && p.Name == provName && h[1] == nil:
			h[1] = &side{p, br}
		default:
			del[br] = append(del[br], p.UUID)
			continue
		}
		have[lp] = h
	}

	var ops []ovsdb.Operation
	add := map[*vswitchd.Bridge][]string{}
	lports := make([]string, 0, len(want))
	for lp := range want {
		lports = append(lports, lp)
	}
	sort.Strings(lports)
	n := 0
	newPort := func(name, peer, lp string) ([]ovsdb.Operation, string, error) {
		n++
		iface := &vswitchd.Interface{UUID: fmt.Sprintf("gvlni%d", n), Name: name, Type: "patch", Options: map[string]string{"peer": peer}}
		port := &vswitchd.Port{UUID: fmt.Sprintf("gvlnp%d", n), Name: name, Interfaces: []string{iface.UUID},
			ExternalIDs: map[string]string{OwnerKey: OwnerValue, LocalnetPortKey: lp}}
		o, err := v.create(iface, port)
		return o, port.UUID, err
	}
	for _, lp := range lports {
		d := want[lp]
		pb := brByName[d.Bridge]
		if pb == nil {
			missing = append(missing, lp)
			continue
		}
		intName, provName := LocalnetPatchNames(intBridge, lp)
		h := have[lp]
		for i, s := range h {
			if s == nil {
				continue
			}
			// Correct a patch interface whose peer is wrong.
			peer := provName
			if i == 1 {
				peer = intName
			}
			if len(s.port.Interfaces) != 1 {
				del[s.br] = append(del[s.br], s.port.UUID)
				h[i] = nil
				continue
			}
			cur := ifByUUID[s.port.Interfaces[0]]
			if cur != nil && (cur.Type != "patch" || cur.Options["peer"] != peer) {
				ifc := &vswitchd.Interface{UUID: cur.UUID, Type: "patch", Options: map[string]string{"peer": peer}}
				o, err := v.c.Where(ifc).Update(ifc, &ifc.Type, &ifc.Options)
				if err != nil {
					return nil, nil, false, err
				}
				ops = append(ops, o...)
			}
		}
		if h[0] == nil {
			if names[intName] {
				return nil, nil, false, fmt.Errorf("localnet port %s: a port named %s exists and is not ours", lp, intName)
			}
			o, u, err := newPort(intName, provName, lp)
			if err != nil {
				return nil, nil, false, err
			}
			ops = append(ops, o...)
			add[ib] = append(add[ib], u)
		}
		if h[1] == nil {
			if names[provName] {
				return nil, nil, false, fmt.Errorf("localnet port %s: a port named %s exists and is not ours", lp, provName)
			}
			o, u, err := newPort(provName, intName, lp)
			if err != nil {
				return nil, nil, false, err
			}
			ops = append(ops, o...)
			add[pb] = append(add[pb], u)
		}
	}
	// A logical port whose provider bridge is missing keeps no half pair.
	for _, lp := range missing {
		for _, s := range have[lp] {
			if s != nil {
				del[s.br] = append(del[s.br], s.port.UUID)
			}
		}
		delete(have, lp)
	}
	for cur, us := range add {
		br := &vswitchd.Bridge{UUID: cur.UUID}
		o, err := v.c.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationInsert, Value: us})
		if err != nil {
			return nil, nil, false, err
		}
		ops = append(ops, o...)
	}
	for cur, us := range del {
		br := &vswitchd.Bridge{UUID: cur.UUID}
		o, err := v.c.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationDelete, Value: us})
		if err != nil {
			return nil, nil, false, err
		}
		ops = append(ops, o...)
	}
	if len(ops) > 0 {
		if err := v.transact(ctx, ops); err != nil {
			return nil, nil, false, fmt.Errorf("reconcile localnet patch ports: %w", err)
		}
		nAdd, nDel := 0, 0
		for _, us := range add {
			nAdd += len(us)
		}
		for _, us := range del {
			nDel += len(us)
		}
		v.log.Info("reconciled localnet patch ports", zap.Int("added", nAdd), zap.Int("removed", nDel), zap.Strings("missing_bridge", missing))
		return nil, missing, true, nil
	}
	ofports = map[string]int{}
	for lp, h := range have {
		if h[0] == nil || len(h[0].port.Interfaces) != 1 {
			continue
		}
		if ifc := ifByUUID[h[0].port.Interfaces[0]]; ifc != nil && ifc.Ofport != nil && *ifc.Ofport > 0 {
			ofports[lp] = *ifc.Ofport
		}
	}
	return ofports, missing, false, nil
}

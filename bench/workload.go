package bench

import (
	"fmt"
	"net/netip"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// Workload is the NB content of one size: Switches logical switches with
// PortsPerSwitch ports each; every switch also has an address set of its
// first ten ports' IPs and two ACLs (one referring to the address set).
type Workload struct {
	Switches       int
	PortsPerSwitch int
	Batch          int // ports per bulk transaction (whole switches per batch)
}

// Ports is the total number of logical switch ports.
func (w Workload) Ports() int { return w.Switches * w.PortsPerSwitch }

// SwitchName, PortName, AddressSetName name the rows of the workload.
func SwitchName(s int) string     { return fmt.Sprintf("bs%d", s) }
func PortName(s, p int) string    { return fmt.Sprintf("bs%d-p%d", s, p) }
func AddressSetName(s int) string { return fmt.Sprintf("bas%d", s) }
func portMAC(s, p int) string {
	return fmt.Sprintf("0a:00:%02x:%02x:%02x:%02x", s>>8, s&0xff, p>>8, p&0xff)
}
func portIP(s, p int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(s), byte(p >> 8), byte(p&0xff + 1)})
}
func portAddresses(s, p int) string { return portMAC(s, p) + " " + portIP(s, p).String() }
func validate(w Workload) error {
	switch {
	case w.Switches < 1 || w.Switches > 250:
		return fmt.Errorf("switches %d: want 1..250", w.Switches)
	case w.PortsPerSwitch < 3 || w.PortsPerSwitch > 60000:
		return fmt.Errorf("ports per switch %d: want 3..60000", w.PortsPerSwitch)
	case w.Batch < 1:
		return fmt.Errorf("batch %d: want >= 1", w.Batch)
	}
	return nil
}

// switchOps creates switch s with its ports, address set and ACLs.
func switchOps(s, ports int) []ovsdb.Operation {
	ops := make([]ovsdb.Operation, 0, ports+4)
	var portRefs, asIPs []any
	for p := range ports {
		u := fmt.Sprintf("p%d_%d", s, p)
		ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: "Logical_Switch_Port", UUIDName: u,
			Row: ovsdb.Row{"name": PortName(s, p), "addresses": set(portAddresses(s, p))}})
		portRefs = append(portRefs, ovsdb.UUID{GoUUID: u})
		if p < 10 {
			asIPs = append(asIPs, portIP(s, p).String())
		}
	}
	ops = append(ops,
		ovsdb.Operation{Op: ovsdb.OperationInsert, Table: "Address_Set",
			Row: ovsdb.Row{"name": AddressSetName(s), "addresses": set(asIPs...)}},
		aclInsert(fmt.Sprintf("a1_%d", s), "to-lport", 1001, fmt.Sprintf("ip4.src == $%s && tcp.dst == 80", AddressSetName(s)), "allow-related"),
		aclInsert(fmt.Sprintf("a2_%d", s), "from-lport", 1000, "ip4 && tcp.dst == 23", "drop"),
		ovsdb.Operation{Op: ovsdb.OperationInsert, Table: "Logical_Switch", UUIDName: fmt.Sprintf("s%d", s),
			Row: ovsdb.Row{"name": SwitchName(s), "ports": set(portRefs...),
				"acls": set(ovsdb.UUID{GoUUID: fmt.Sprintf("a1_%d", s)}, ovsdb.UUID{GoUUID: fmt.Sprintf("a2_%d", s)})}},
	)
	return ops
}

func aclInsert(uuidName, dir string, prio int, match, action string) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationInsert, Table: "ACL", UUIDName: uuidName,
		Row: ovsdb.Row{"direction": dir, "priority": prio, "match": match, "action": action}}
}

// bulkBatches splits the workload into transactions of whole switches, about
// w.Batch ports each.
func bulkBatches(w Workload) [][]ovsdb.Operation {
	per := max(1, w.Batch/w.PortsPerSwitch)
	var batches [][]ovsdb.Operation
	for s := 0; s < w.Switches; s += per {
		var ops []ovsdb.Operation
		for i := s; i < min(s+per, w.Switches); i++ {
			ops = append(ops, switchOps(i, w.PortsPerSwitch)...)
		}
		batches = append(batches, ops)
	}
	return batches
}

// addPortOps adds port name (with a MAC/IP outside the bulk ranges) to the
// switch with UUID sw.
func addPortOps(sw, name string, i int) []ovsdb.Operation {
	addr := fmt.Sprintf("0a:ff:00:00:%02x:%02x 10.255.%d.%d", (i>>8)&0xff, i&0xff, (i>>8)&0xff, i&0xff+1)
	u := "newport"
	return []ovsdb.Operation{
		{Op: ovsdb.OperationInsert, Table: "Logical_Switch_Port", UUIDName: u,
			Row: ovsdb.Row{"name": name, "addresses": set(addr)}},
		{Op: ovsdb.OperationMutate, Table: "Logical_Switch", Where: whereUUID(sw),
			Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: ovsdb.MutateOperationInsert, Value: set(ovsdb.UUID{GoUUID: u})}}},
	}
}

// delPortOps deletes the port with UUID port from the switch with UUID sw.
func delPortOps(sw, port string) []ovsdb.Operation {
	return []ovsdb.Operation{
		{Op: ovsdb.OperationMutate, Table: "Logical_Switch", Where: whereUUID(sw),
			Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: ovsdb.MutateOperationDelete, Value: set(ovsdb.UUID{GoUUID: port})}}},
		{Op: ovsdb.OperationDelete, Table: "Logical_Switch_Port", Where: whereUUID(port)},
	}
}

// addACLOps adds the i-th extra ACL (a distinct match) to switch sw.
func addACLOps(sw string, i int) []ovsdb.Operation {
	return []ovsdb.Operation{
		aclInsert("newacl", "from-lport", 1100, fmt.Sprintf("ip4 && tcp.dst == %d", 1024+i), "drop"),
		{Op: ovsdb.OperationMutate, Table: "Logical_Switch", Where: whereUUID(sw),
			Mutations: []ovsdb.Mutation{{Column: "acls", Mutator: ovsdb.MutateOperationInsert, Value: set(ovsdb.UUID{GoUUID: "newacl"})}}},
	}
}

// addASIPOps adds the i-th extra IP to address set name.
func addASIPOps(name string, i int) []ovsdb.Operation {
	ip := netip.AddrFrom4([4]byte{10, 254, byte(i >> 8), byte(i&0xff + 1)})
	return []ovsdb.Operation{{Op: ovsdb.OperationMutate, Table: "Address_Set", Where: whereName(name),
		Mutations: []ovsdb.Mutation{{Column: "addresses", Mutator: ovsdb.MutateOperationInsert, Value: set(ip.String())}}}}
}

// Package action implements the action half of OVN's logical-flow language
// (ovn-sb(5), Logical_Flow "actions"): parsing with prerequisites and a
// canonical form, encoding to OpenFlow for the controller, and execution on
// a packet model for the trace simulator.
//
//	parsed, err := action.Parse(`ct_commit { ct_mark = 1; }; next;`, symtab.Default())
//	// parsed.Actions.String() == "ct_commit { ct_mark = 1; }; next;"
//	// parsed.Prereqs == ["ip"]: the caller ANDs them into the flow's match.
//	enc, err := action.Encode(parsed.Actions, &action.EncodeParams{...})
//	// enc.Actions: ct(commit,zone=reg13[0..15],exec(set_field:0x1->ct_mark)),resubmit(,T)
//	res, err := action.Execute(parsed.Actions, &pkt, &action.ExecContext{...})
//	// res.Steps: what happened, with packet snapshots, for trace to follow.
//
// Errors are *lex.Error values ("1:14: reason"). Nothing here does I/O or
// keeps global state: table layout, port keys, group ids and meters are
// passed in EncodeParams; FDB/MAC-binding contents, conntrack states and
// load-balancer choices in ExecContext.
//
// Conventions shared with the controller (the OpenFlow tables it builds and
// the packet-ins it handles) are documented on EncodeParams, Opcode,
// MACBindingPort and LookupMACResult. The golden files
// lflow/testdata/action-parse.txt and action-errors.txt show every action
// with its canonical form, prerequisites and encoding; their encodings are
// checked by ovs-ofctl and a real ovs-vswitchd, their canonical forms by
// OVN's own parser (ovn-trace), and Execute against ofproto/trace.
package action

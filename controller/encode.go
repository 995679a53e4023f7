package controller

import "github.com/govn/govn/lflow/action"

// EncodeParams returns lflow/action encoding parameters for a logical flow in
// table n of pipeline p, filled with this bridge's table layout (logical table
// map, output table, MAC-binding, FDB and load-balancer hairpin lookup tables). The caller adds what
// depends on the flow's datapath: Datapath, LookupPort, AllocGroup, Router.
func EncodeParams(p Pipeline, n int) action.EncodeParams {
	pl := action.Ingress
	if p == Egress {
		pl = action.Egress
	}
	return action.EncodeParams{
		Pipeline: pl,
		Table:    n,
		TableMap: func(ap action.Pipeline, n int) (int, bool) {
			cp := Ingress
			if ap == action.Egress {
				cp = Egress
			}
			t, err := LogicalTable(cp, n)
			return int(t), err == nil
		},
		OutputTable:         int(OutputTable(p)),
		MACBindingTable:     int(TableMACBinding),
		GetFDBTable:         int(TableGetFDB),
		LookupFDBTable:      int(TableLookupFDB),
		LookupMACTable:      int(TableLookupMAC),
		LookupMACIPTable:    int(TableLookupMACIP),
		LBHairpinTable:      int(TableLBHairpin),
		LBHairpinReplyTable: int(TableLBHairpinReply),
		CTSNATHairpinTable:  int(TableCTSNATHairpin),
		LBAffinityTable:     int(TableLBAffinity),
	}
}

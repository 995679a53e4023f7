package northd

import "fmt"

// Pipeline is a logical pipeline direction.
type Pipeline uint8

const (
	Ingress Pipeline = iota
	Egress
)

// String returns the Logical_Flow.pipeline value ("ingress" or "egress").
func (p Pipeline) String() string {
	if p == Egress {
		return "egress"
	}
	return "ingress"
}

// DatapathKind is the kind of logical datapath a stage belongs to.
type DatapathKind uint8

const (
	SwitchDatapath DatapathKind = iota
	RouterDatapath
)

// Stage is one logical pipeline stage. Every stage is declared once, in
// order, in the stages table below; code names stages by these constants and
// never by raw table numbers.
type Stage uint8

type stageInfo struct {
	kind     DatapathKind
	pipeline Pipeline
	table    uint8
	name     string
}

// The stages of OVN 23.03's logical switch and logical router pipelines,
// with OVN's stage names (Logical_Flow external_ids:stage-name) and table
// numbers (Logical_Flow.table_id). Order matters: within one datapath kind
// and pipeline, tables are numbered consecutively from 0 (checked in init).
const (
	// Logical switch, ingress.
	LSInCheckPortSec Stage = iota // 0: admission control, port security check (sets REGBIT_PORT_SEC_DROP)
	LSInApplyPortSec              // 1: drop if REGBIT_PORT_SEC_DROP
	LSInLookupFDB                 // 2: MAC learning lookup
	LSInPutFDB                    // 3: MAC learning
	LSInPreACL                    // 4: from-lport pre-ACL (conntrack hint)
	LSInPreLB                     // 5: pre load balancing
	LSInPreStateful               // 6: send to conntrack per hint
	LSInACLHint                   // 7: ACL hints (reg0[7..10])
	LSInACL                       // 8: from-lport ACLs (before LB)
	LSInQoSMark                   // 9
	LSInQoSMeter                  // 10
	LSInLBAffCheck                // 11
	LSInLB                        // 12
	LSInLBAffLearn                // 13
	LSInPreHairpin                // 14
	LSInNATHairpin                // 15
	LSInHairpin                   // 16
	LSInACLAfterLB                // 17: from-lport ACLs after LB
	LSInStateful                  // 18: ct_commit per hint
	LSInARPRsp                    // 19: ARP/ND responder for known IPs
	LSInDHCPOptions               // 20
	LSInDHCPResponse              // 21
	LSInDNSLookup                 // 22
	LSInDNSResponse               // 23
	LSInExternalPort              // 24
	LSInL2Lkup                    // 25: destination lookup (unicast, broadcast)
	LSInL2Unknown                 // 26: unknown destinations

	// Logical switch, egress.
	LSOutPreACL       // 0: to-lport pre-ACL
	LSOutPreLB        // 1
	LSOutPreStateful  // 2
	LSOutACLHint      // 3
	LSOutACL          // 4: to-lport ACLs
	LSOutQoSMark      // 5
	LSOutQoSMeter     // 6
	LSOutStateful     // 7
	LSOutCheckPortSec // 8: egress port security check
	LSOutApplyPortSec // 9: drop or output

	// Logical router, ingress.
	LRInAdmission      // 0
	LRInLookupNeighbor // 1
	LRInLearnNeighbor  // 2
	LRInIPInput        // 3
	LRInUnSNAT         // 4
	LRInDefrag         // 5
	LRInLBAffCheck     // 6
	LRInDNAT           // 7
	LRInLBAffLearn     // 8
	LRInECMPStateful   // 9
	LRInNDRAOptions    // 10
	LRInNDRAResponse   // 11
	LRInIPRoutingPre   // 12
	LRInIPRouting      // 13
	LRInIPRoutingECMP  // 14
	LRInPolicy         // 15
	LRInPolicyECMP     // 16
	LRInARPResolve     // 17
	LRInChkPktLen      // 18
	LRInLargerPkts     // 19
	LRInGWRedirect     // 20
	LRInARPRequest     // 21

	// Logical router, egress.
	LROutChkDNATLocal // 0
	LROutUnDNAT       // 1
	LROutPostUnDNAT   // 2
	LROutSNAT         // 3
	LROutPostSNAT     // 4
	LROutEgrLoop      // 5
	LROutDelivery     // 6

	numStages
)

var stages = [numStages]stageInfo{
	LSInCheckPortSec: {SwitchDatapath, Ingress, 0, "ls_in_check_port_sec"},
	LSInApplyPortSec: {SwitchDatapath, Ingress, 0, "ls_in_apply_port_sec"},
	LSInLookupFDB:    {SwitchDatapath, Ingress, 0, "ls_in_lookup_fdb"},
	LSInPutFDB:       {SwitchDatapath, Ingress, 0, "ls_in_put_fdb"},
	LSInPreACL:       {SwitchDatapath, Ingress, 0, "ls_in_pre_acl"},
	LSInPreLB:        {SwitchDatapath, Ingress, 0, "ls_in_pre_lb"},
	LSInPreStateful:  {SwitchDatapath, Ingress, 0, "ls_in_pre_stateful"},
	LSInACLHint:      {SwitchDatapath, Ingress, 0, "ls_in_acl_hint"},
	LSInACL:          {SwitchDatapath, Ingress, 0, "ls_in_acl"},
	LSInQoSMark:      {SwitchDatapath, Ingress, 0, "ls_in_qos_mark"},
	LSInQoSMeter:     {SwitchDatapath, Ingress, 0, "ls_in_qos_meter"},
	LSInLBAffCheck:   {SwitchDatapath, Ingress, 0, "ls_in_lb_aff_check"},
	LSInLB:           {SwitchDatapath, Ingress, 0, "ls_in_lb"},
	LSInLBAffLearn:   {SwitchDatapath, Ingress, 0, "ls_in_lb_aff_learn"},
	LSInPreHairpin:   {SwitchDatapath, Ingress, 0, "ls_in_pre_hairpin"},
	LSInNATHairpin:   {SwitchDatapath, Ingress, 0, "ls_in_nat_hairpin"},
	LSInHairpin:      {SwitchDatapath, Ingress, 0, "ls_in_hairpin"},
	LSInACLAfterLB:   {SwitchDatapath, Ingress, 0, "ls_in_acl_after_lb"},
	LSInStateful:     {SwitchDatapath, Ingress, 0, "ls_in_stateful"},
	LSInARPRsp:       {SwitchDatapath, Ingress, 0, "ls_in_arp_rsp"},
	LSInDHCPOptions:  {SwitchDatapath, Ingress, 0, "ls_in_dhcp_options"},
	LSInDHCPResponse: {SwitchDatapath, Ingress, 0, "ls_in_dhcp_response"},
	LSInDNSLookup:    {SwitchDatapath, Ingress, 0, "ls_in_dns_lookup"},
	LSInDNSResponse:  {SwitchDatapath, Ingress, 0, "ls_in_dns_response"},
	LSInExternalPort: {SwitchDatapath, Ingress, 0, "ls_in_external_port"},
	LSInL2Lkup:       {SwitchDatapath, Ingress, 0, "ls_in_l2_lkup"},
	LSInL2Unknown:    {SwitchDatapath, Ingress, 0, "ls_in_l2_unknown"},

	LSOutPreACL:       {SwitchDatapath, Egress, 0, "ls_out_pre_acl"},
	LSOutPreLB:        {SwitchDatapath, Egress, 0, "ls_out_pre_lb"},
	LSOutPreStateful:  {SwitchDatapath, Egress, 0, "ls_out_pre_stateful"},
	LSOutACLHint:      {SwitchDatapath, Egress, 0, "ls_out_acl_hint"},
	LSOutACL:          {SwitchDatapath, Egress, 0, "ls_out_acl"},
	LSOutQoSMark:      {SwitchDatapath, Egress, 0, "ls_out_qos_mark"},
	LSOutQoSMeter:     {SwitchDatapath, Egress, 0, "ls_out_qos_meter"},
	LSOutStateful:     {SwitchDatapath, Egress, 0, "ls_out_stateful"},
	LSOutCheckPortSec: {SwitchDatapath, Egress, 0, "ls_out_check_port_sec"},
	LSOutApplyPortSec: {SwitchDatapath, Egress, 0, "ls_out_apply_port_sec"},

	LRInAdmission:      {RouterDatapath, Ingress, 0, "lr_in_admission"},
	LRInLookupNeighbor: {RouterDatapath, Ingress, 0, "lr_in_lookup_neighbor"},
	LRInLearnNeighbor:  {RouterDatapath, Ingress, 0, "lr_in_learn_neighbor"},
	LRInIPInput:        {RouterDatapath, Ingress, 0, "lr_in_ip_input"},
	LRInUnSNAT:         {RouterDatapath, Ingress, 0, "lr_in_unsnat"},
	LRInDefrag:         {RouterDatapath, Ingress, 0, "lr_in_defrag"},
	LRInLBAffCheck:     {RouterDatapath, Ingress, 0, "lr_in_lb_aff_check"},
	LRInDNAT:           {RouterDatapath, Ingress, 0, "lr_in_dnat"},
	LRInLBAffLearn:     {RouterDatapath, Ingress, 0, "lr_in_lb_aff_learn"},
	LRInECMPStateful:   {RouterDatapath, Ingress, 0, "lr_in_ecmp_stateful"},
	LRInNDRAOptions:    {RouterDatapath, Ingress, 0, "lr_in_nd_ra_options"},
	LRInNDRAResponse:   {RouterDatapath, Ingress, 0, "lr_in_nd_ra_response"},
	LRInIPRoutingPre:   {RouterDatapath, Ingress, 0, "lr_in_ip_routing_pre"},
	LRInIPRouting:      {RouterDatapath, Ingress, 0, "lr_in_ip_routing"},
	LRInIPRoutingECMP:  {RouterDatapath, Ingress, 0, "lr_in_ip_routing_ecmp"},
	LRInPolicy:         {RouterDatapath, Ingress, 0, "lr_in_policy"},
	LRInPolicyECMP:     {RouterDatapath, Ingress, 0, "lr_in_policy_ecmp"},
	LRInARPResolve:     {RouterDatapath, Ingress, 0, "lr_in_arp_resolve"},
	LRInChkPktLen:      {RouterDatapath, Ingress, 0, "lr_in_chk_pkt_len"},
	LRInLargerPkts:     {RouterDatapath, Ingress, 0, "lr_in_larger_pkts"},
	LRInGWRedirect:     {RouterDatapath, Ingress, 0, "lr_in_gw_redirect"},
	LRInARPRequest:     {RouterDatapath, Ingress, 0, "lr_in_arp_request"},

	LROutChkDNATLocal: {RouterDatapath, Egress, 0, "lr_out_chk_dnat_local"},
	LROutUnDNAT:       {RouterDatapath, Egress, 0, "lr_out_undnat"},
	LROutPostUnDNAT:   {RouterDatapath, Egress, 0, "lr_out_post_undnat"},
	LROutSNAT:         {RouterDatapath, Egress, 0, "lr_out_snat"},
	LROutPostSNAT:     {RouterDatapath, Egress, 0, "lr_out_post_snat"},
	LROutEgrLoop:      {RouterDatapath, Egress, 0, "lr_out_egr_loop"},
	LROutDelivery:     {RouterDatapath, Egress, 0, "lr_out_delivery"},
}

var stageByName = map[string]Stage{}

// init numbers the tables: consecutive from 0 within each (kind, pipeline),
// in declaration order.
func init() {
	next := map[[2]uint8]uint8{}
	for i := range stages {
		s := &stages[i]
		if s.name == "" {
			panic(fmt.Sprintf("northd: stage %d has no name", i))
		}
		k := [2]uint8{uint8(s.kind), uint8(s.pipeline)}
		s.table = next[k]
		next[k]++
		stageByName[s.name] = Stage(i)
	}
}

// Name is OVN's stage name, e.g. "ls_in_acl".
func (s Stage) Name() string { return stages[s].name }

// String is the stage name.
func (s Stage) String() string {
	if s >= numStages {
		return fmt.Sprintf("stage(%d)", uint8(s))
	}
	return stages[s].name
}

// Table is the Logical_Flow table_id.
func (s Stage) Table() int { return int(stages[s].table) }

// Pipeline is the stage's pipeline.
func (s Stage) Pipeline() Pipeline { return stages[s].pipeline }

// Kind is the datapath kind the stage belongs to.
func (s Stage) Kind() DatapathKind { return stages[s].kind }

// StageByName finds a stage by OVN's name.
func StageByName(name string) (Stage, bool) {
	s, ok := stageByName[name]
	return s, ok
}

// StageAt finds the stage of a datapath kind at (pipeline, table).
func StageAt(kind DatapathKind, p Pipeline, table int) (Stage, bool) {
	for i, s := range stages {
		if s.kind == kind && s.pipeline == p && int(s.table) == table {
			return Stage(i), true
		}
	}
	return 0, false
}

// Stages returns every stage in declaration order.
func Stages() []Stage {
	out := make([]Stage, numStages)
	for i := range out {
		out[i] = Stage(i)
	}
	return out
}

// Register conventions of the logical switch pipeline (OVN 23.03 names in
// comments). Flows use these texts; they are declared once here.
const (
	regbitConntrackDefrag = "reg0[0]"  // REGBIT_CONNTRACK_DEFRAG: send to conntrack (pre-stateful)
	regbitConntrackCommit = "reg0[1]"  // REGBIT_CONNTRACK_COMMIT: commit in stateful stage
	regbitConntrackNAT    = "reg0[2]"  // REGBIT_CONNTRACK_NAT: ct_lb_mark in pre-stateful
	regbitACLHintAllowNew = "reg0[7]"  // REGBIT_ACL_HINT_ALLOW_NEW
	regbitACLHintAllow    = "reg0[8]"  // REGBIT_ACL_HINT_ALLOW
	regbitACLHintDrop     = "reg0[9]"  // REGBIT_ACL_HINT_DROP
	regbitACLHintBlock    = "reg0[10]" // REGBIT_ACL_HINT_BLOCK
	regbitACLLabel        = "reg0[13]" // REGBIT_ACL_LABEL: commit reg3 as ct_label.label
	regbitPortSecDrop     = "reg0[15]" // REGBIT_PORT_SEC_DROP
	regbitACLStateless    = "reg0[16]" // REGBIT_ACL_STATELESS
	regbitACLHintAllowRel = "reg0[17]" // REGBIT_ACL_HINT_ALLOW_REL: reply/related traffic allowed
	regLabel              = "reg3"     // REG_LABEL: ACL label to commit
	// REG_ACL_TIER (OVN 23.06): the ACL tier being evaluated. Only on
	// switches with an ACL of tier > 0: ACL flows also match their tier,
	// a tier without a verdict (a "pass" ACL, or no ACL matched) sets the
	// next tier and looks the same ACL stage up again, and every way out
	// of an ACL stage but drop resets it to 0 (see acl.go).
	regACLTier         = "reg8[30..31]"
	regbitHairpin      = "reg0[6]"  // REGBIT_HAIRPIN: chk_lb_hairpin() result
	regbitHairpinReply = "reg0[12]" // REGBIT_HAIRPIN_REPLY: chk_lb_hairpin_reply() result
	// The original destination of a load-balanced connection (VIP, port),
	// saved in pre-stateful for chk_lb_hairpin: reg1 / xxreg1 (IPv6)
	// (REG_ORIG_DIP_IPV4 / REG_ORIG_DIP_IPV6) and reg2[0..15]
	// (REG_ORIG_TP_DPORT).
	regLBPort = "reg2[0..15]"
	// Load-balancer session affinity (switches and routers):
	// chk_lb_aff()'s result and the backend a learned affinity flow
	// loads (lflow/action LBAffBackendIP4/IP6, LBAffBackendPort).
	regbitKnownLBSession = "reg9[6]"     // REGBIT_KNOWN_LB_SESSION
	regLBAffBackendIP4   = "reg4"        // REG_LB_AFF_BACKEND_IP4
	regLBAffBackendIP6   = "xxreg1"      // REG_LB_AFF_BACKEND_IP6 (xxreg1, as commit_lb_aff loads it)
	regLBAffMatchPort    = "reg8[0..15]" // REG_LB_AFF_MATCH_PORT
)

// Register conventions of the logical router pipeline (OVN 23.03 names).
const (
	regbitEgressLoopback = "reg9[0]" // REGBIT_EGRESS_LOOPBACK: packet re-injected by lr_out_egr_loop
	regbitDNATLocal      = "reg9[4]" // REGBIT_DST_NAT_IP_LOCAL: destination is a NAT IP handled on this chassis
	// The VIP and port of a new connection, saved in lr_in_lb_aff_check
	// for lr_in_lb_aff_learn: reg0 / xxreg0 (REG_NEXT_HOP_IPV4/IPV6, free
	// until routing) and reg9[16..31] (REG_LB_L4_PORT).
	regLRLBPort = "reg9[16..31]"
)

// Multicast group names and tunnel keys (Multicast_Group.name/tunnel_key),
// as in OVN.
const (
	MCFlood      = "_MC_flood"
	MCFloodKey   = 32768
	MCUnknown    = "_MC_unknown"
	MCUnknownKey = 32769
)

package northd

import (
	"fmt"
	"strings"
)

// aclGen: pre-ACL, pre-stateful, ACL hints,
// ACL evaluation and stateful stages, in both pipelines, following OVN
// 23.03's texts. NB ACL priorities are offset by aclPrioOffset.
//
// ACL tiers (OVN 23.06's ACL.tier and "pass" action) in 23.03's pipeline
// layout: on a switch whose ACLs use a tier above 0 (maxTier), every ACL
// flow also matches regACLTier == its tier. Tier 0 is evaluated first. A tier
// that reaches no verdict — a "pass" ACL matched, or no ACL of the tier
// matched (the aclTierPrio flows, below every ACL and above the defaults) —
// sets the next tier and looks the same stage up again
// (next(pipeline=…,table=<this stage>)); after the last tier the stage's
// defaults apply. Every way out of the stage except a drop resets the tier
// to 0, so the next ACL stage (after-LB, egress) starts at tier 0 again.
// Without tiers the flows are 23.03's, and "pass" is OVN's no-verdict
// "next;" (the defaults are skipped, as in OVN).
type aclGen struct{}

const (
	aclPrioOffset = 1000
	// aclTierPrio is the priority of the "no verdict in this tier: next
	// tier" flows: below every NB ACL (>= aclPrioOffset), above the
	// defaults (0 and 1).
	aclTierPrio = 500
	// MaxACLTier is the highest ACL.tier (the schema allows 0..3, as OVN).
	MaxACLTier = 3
)

// maxACLTier is the highest tier of a switch's ACLs (0: no tiers).
func maxACLTier(acls []*ACL) int {
	m := 0
	for _, a := range acls {
		if a.Tier > m {
			m = a.Tier
		}
	}
	return m
}

// tierReset is the action prefix that resets the tier register on the way
// out of an ACL stage (empty without tiers).
func tierReset(maxTier int) string {
	if maxTier == 0 {
		return ""
	}
	return regACLTier + " = 0; "
}

// tierNext is the action that moves evaluation of stage s to tier t.
func tierNext(s Stage, t int) string {
	return fmt.Sprintf("%s = %d; next(pipeline=%s,table=%d);", regACLTier, t, s.Pipeline(), s.Table())
}

func (aclGen) Name() string { return "northd/acl.go" }

func (aclGen) Switch(sc *SwitchContext, b *Builder) {
	// Traffic that never goes to conntrack (OVN adds MLD when the symbol
	// table has the mldv1/mldv2 predicates).
	ndMLD, ndMLDACLSkip := "nd || nd_rs || nd_ra", "nd || nd_ra || nd_rs"
	if sc.Caps.MLD {
		ndMLD += " || mldv1 || mldv2"
		ndMLDACLSkip += " || mldv1 || mldv2"
	}
	ndMLDDHCPv6 := ndMLD + " || (udp && udp.src == 546 && udp.dst == 547)"
	type dir struct {
		preACL, preStateful, hint, acl, stateful Stage
		svc, port                                string
	}
	// A load balancer VIP makes the ACL stages stateful as an
	// allow-related ACL does (OVN's has_stateful = stateful ACL || LB VIP);
	// pre-ACL conntrack stays for stateful ACLs only.
	hasACLs, stateful := sc.HasACLs || sc.HasLBVIP, sc.Stateful()
	dirs := []dir{
		{LSInPreACL, LSInPreStateful, LSInACLHint, LSInACL, LSInStateful, "eth.dst == $svc_monitor_mac", "inport"},
		{LSOutPreACL, LSOutPreStateful, LSOutACLHint, LSOutACL, LSOutStateful, "eth.src == $svc_monitor_mac", "outport"},
	}
	maxTier := maxACLTier(sc.ACLs)
	reset := tierReset(maxTier)
	addTierFlows := func(s Stage) {
		for t := 0; t < maxTier; t++ {
			b.Add(s, aclTierPrio, fmt.Sprintf("%s == %d", regACLTier, t), tierNext(s, t+1))
		}
	}
	for i, d := range dirs {
		// Pre-ACL.
		b.Add(d.preACL, 110, d.svc, "next;")
		b.Add(d.preACL, 0, "1", "next;")
		if sc.HasStateful {
			b.Add(d.preACL, 110, "eth.mcast", "next;")
			b.Add(d.preACL, 110, ndMLDDHCPv6, "next;")
			b.Add(d.preACL, 100, "ip", regbitConntrackDefrag+" = 1; next;")
			for _, p := range sc.Ports {
				if p.Type == "localnet" || p.Type == "router" {
					b.Ref(RefLSP, p.Name)
					b.Add(d.preACL, 110, "ip && "+d.port+" == "+quote(p.Name), "next;")
					b.Ref("", "")
				}
			}
		}
		// Pre-LB: northd/lb.go.
		// Pre-stateful.
		b.Add(d.preStateful, 110, regbitConntrackNAT+" == 1", "ct_lb_mark;")
		b.Add(d.preStateful, 100, regbitConntrackDefrag+" == 1", "ct_next;")
		b.Add(d.preStateful, 0, "1", "next;")
		// ACL hints: only where connections are tracked (stateful ACLs or
		// load balancer VIPs), as OVN 23.03.
		if !hasACLs {
			b.Add(d.hint, 65535, "1", "next;")
		} else {
			b.Add(d.hint, 0, "1", "next;")
		}
		if stateful {
			h := func(prio uint16, match string, bits ...string) {
				var sb strings.Builder
				for _, r := range bits {
					sb.WriteString(r + " = 1; ")
				}
				sb.WriteString("next;")
				b.Add(d.hint, prio, match, sb.String())
			}
			h(7, "ct.new && !ct.est", regbitACLHintAllowNew, regbitACLHintDrop)
			h(6, "!ct.new && ct.est && !ct.rpl && ct_mark.blocked == 1", regbitACLHintAllowNew, regbitACLHintDrop)
			h(5, "!ct.trk", regbitACLHintAllow, regbitACLHintDrop)
			h(4, "!ct.new && ct.est && !ct.rpl && ct_mark.blocked == 0", regbitACLHintAllow, regbitACLHintBlock)
			h(3, "!ct.est", regbitACLHintDrop)
			h(2, "ct.est && ct_mark.blocked == 1", regbitACLHintDrop)
			h(1, "ct.est && ct_mark.blocked == 0", regbitACLHintBlock)
		}
		// ACL defaults.
		if !hasACLs {
			b.Add(d.acl, 65535, "1", "next;")
		} else {
			b.Add(d.acl, 0, "1", reset+"next;")
			b.Add(d.acl, 34000, d.svc, "next;")
			addTierFlows(d.acl)
		}
		b.Add(d.acl, 65532, ndMLDACLSkip, "next;")
		if stateful {
			b.Add(d.acl, 1, "ip && !ct.est", reset+regbitConntrackCommit+" = 1; next;")
			b.Add(d.acl, 1, "ip && ct.est && ct_mark.blocked == 1", reset+regbitConntrackCommit+" = 1; next;")
			b.Add(d.acl, 65532, "ct.inv || (ct.est && ct.rpl && ct_mark.blocked == 1)", "drop;")
			if i == 0 {
				b.Add(d.acl, 65532, "ct.est && !ct.rel && !ct.new && !ct.inv && ct.rpl && ct_mark.blocked == 0",
					regbitACLHintDrop+" = 0; "+regbitACLHintBlock+" = 0; "+regbitACLHintAllowRel+" = 1; next;")
				b.Add(d.acl, 65532, "!ct.est && ct.rel && !ct.new && !ct.inv && ct_mark.blocked == 0",
					regbitACLHintAllowRel+" = 1; ct_commit_nat;")
			} else {
				b.Add(d.acl, 65532, "ct.est && !ct.rel && !ct.new && !ct.inv && ct.rpl && ct_mark.blocked == 0", "next;")
				b.Add(d.acl, 65532, "!ct.est && ct.rel && !ct.new && !ct.inv && ct_mark.blocked == 0", "ct_commit_nat;")
			}
		}
		// Stateful.
		b.Add(d.stateful, 100, regbitConntrackCommit+" == 1 && "+regbitACLLabel+" == 0", "ct_commit { ct_mark.blocked = 0; }; next;")
		b.Add(d.stateful, 100, regbitConntrackCommit+" == 1 && "+regbitACLLabel+" == 1",
			"ct_commit { ct_mark.blocked = 0; ct_label.label = "+regLabel+"; }; next;")
		b.Add(d.stateful, 0, "1", "next;")
	}
	// ACLs after LB (ingress only).
	b.Add(LSInACLAfterLB, 65532, ndMLDACLSkip, "next;")
	b.Add(LSInACLAfterLB, 0, "1", reset+"next;")
	if sc.HasACLs {
		addTierFlows(LSInACLAfterLB)
	}
	if stateful {
		b.Add(LSInACLAfterLB, 65532, regbitACLHintAllowRel+" == 1", "next;")
	}

	for _, a := range sc.ACLs {
		b.Ref(RefACL, a.UUID)
		aclFlows(sc, a, maxTier, b)
	}
	b.Ref("", "")
}

// aclStage is the stage of an ACL's evaluation flows.
func aclStage(a *ACL) Stage {
	if a.Direction == "to-lport" {
		return LSOutACL
	}
	if a.Options["apply-after-lb"] == "true" {
		return LSInACLAfterLB
	}
	return LSInACL
}

// aclLog is the log() action prefix for a logged ACL ("" otherwise).
func aclLog(a *ACL, verdict string) string {
	if !a.Log {
		return ""
	}
	var parts []string
	if a.Name != nil && *a.Name != "" {
		parts = append(parts, "name="+quote(*a.Name))
	}
	if a.Severity != nil && *a.Severity != "" {
		parts = append(parts, "severity="+*a.Severity)
	}
	parts = append(parts, "verdict="+verdict)
	if a.Meter != nil && *a.Meter != "" {
		parts = append(parts, "meter="+quote(*a.Meter))
	}
	return "log(" + strings.Join(parts, ", ") + "); "
}

func aclFlows(sc *SwitchContext, a *ACL, maxTier int, b *Builder) {
	stage := aclStage(a)
	prio := uint16(a.Priority + aclPrioOffset)
	m := a.Match
	// With tiers, every flow of the ACL also matches its tier; allowing
	// flows reset the tier on the way out.
	tier := ""
	if maxTier > 0 {
		tier = fmt.Sprintf("%s == %d && ", regACLTier, a.Tier)
		m = "(" + m + ")"
	}
	reset := tierReset(maxTier)
	rejectAct := func() string {
		// As OVN 23.03: the reply to a from-lport packet goes back out
		// through the egress pipeline (ls_out_qos_mark); the reply to a
		// to-lport packet is switched again (ls_in_l2_lkup).
		next := LSOutQoSMark
		if a.Direction == "to-lport" {
			next = LSInL2Lkup
		}
		return fmt.Sprintf("reg0 = 0; reject { outport <-> inport; next(pipeline=%s,table=%d); };", next.Pipeline(), next.Table())
	}
	switch a.Action {
	case "pass":
		// No verdict: the next tier, or (last tier, no tiers) go on.
		act := reset + "next;"
		if a.Tier < maxTier {
			act = tierNext(stage, a.Tier+1)
		}
		b.Add(stage, prio, tier+m, aclLog(a, "pass")+act)
	case "allow-stateless":
		b.Add(stage, prio, tier+m, aclLog(a, "allow")+reset+"next;")
		if sc.Stateful() {
			pre := LSInPreACL
			if a.Direction == "to-lport" {
				pre = LSOutPreACL
			}
			b.Add(pre, prio, a.Match, regbitACLStateless+" = 1; next;")
		}
	case "allow", "allow-related":
		if !sc.Stateful() {
			b.Add(stage, prio, tier+m, aclLog(a, "allow")+reset+"next;")
			return
		}
		commit := regbitConntrackCommit + " = 1; "
		label := ""
		if a.Label != 0 {
			label = fmt.Sprintf("%s = 1; %s = %d; ", regbitACLLabel, regLabel, a.Label)
		}
		b.Add(stage, prio, tier+regbitACLHintAllowNew+" == 1 && ("+a.Match+")", commit+label+aclLog(a, "allow")+reset+"next;")
		b.Add(stage, prio, tier+regbitACLHintAllow+" == 1 && ("+a.Match+")", label+aclLog(a, "allow")+reset+"next;")
	case "drop", "reject":
		verdict := a.Action
		tail := "" // an action list without output or next drops
		if a.Action == "reject" {
			tail = rejectAct()
		}
		act := func(prefix string) string {
			s := strings.TrimSpace(prefix + aclLog(a, verdict) + tail)
			if s == "" {
				return "drop;"
			}
			return s
		}
		if !sc.Stateful() {
			b.Add(stage, prio, tier+m, act(""))
			return
		}
		b.Add(stage, prio, tier+regbitACLHintBlock+" == 1 && ("+a.Match+")", act("ct_commit { ct_mark.blocked = 1; }; "))
		b.Add(stage, prio, tier+regbitACLHintDrop+" == 1 && ("+a.Match+")", act(""))
	}
}

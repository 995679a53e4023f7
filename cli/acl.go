package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	govnv1 "github.com/govn/govn/api/govnv1"
)

func init() { register(newACLCommand) }

func newACLCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "acl", Short: "ACLs of a logical switch or port group: add, del, list"}
	var pg, mayExist, ifExists, log bool
	var name, severity, meter string
	var tier, delTier int
	entity := func(a *govnv1.ACL, e string) {
		if pg {
			a.PortGroup = e
		} else {
			a.Switch = e
		}
	}
	add := &cobra.Command{
		Use:   "add ENTITY DIRECTION PRIORITY MATCH ACTION",
		Short: "Add an ACL to a switch (or, with --port-group, a port group)",
		Long: "Add an ACL. DIRECTION is from-lport or to-lport, PRIORITY 0..32767, MATCH a logical-flow match,\n" +
			"ACTION allow, allow-related, allow-stateless, drop, reject or pass. A bad match is reported with its position.\n" +
			"--tier N (0..3) puts the ACL in tier N: tier 0 is evaluated first; \"pass\", or no matching ACL in a tier,\n" +
			"goes on with the next tier.",
		Args: cobra.ExactArgs(5),
		RunE: o.withAPI(func(a *api, args []string) error {
			prio, err := strconv.Atoi(args[2])
			if err != nil {
				return fmt.Errorf("PRIORITY %q: not an integer", args[2])
			}
			acl := &govnv1.ACL{Direction: args[1], Priority: int32(prio), Match: args[3], Action: args[4], Log: log,
				Name: name, Severity: severity, Meter: meter, Tier: int32(tier)}
			entity(acl, args[0])
			got, err := a.acl().CreateACL(a.ctx, &govnv1.CreateACLRequest{Acl: acl, MayExist: mayExist})
			if err != nil {
				return a.err(err)
			}
			return a.printCreated(got, got.Uuid)
		}),
	}
	add.Flags().BoolVar(&mayExist, "may-exist", false, "no error if the same ACL already exists")
	add.Flags().BoolVar(&log, "log", false, "log packets that match")
	add.Flags().StringVar(&name, "name", "", "ACL name (shown in logs)")
	add.Flags().StringVar(&severity, "severity", "", "log severity: alert, warning, notice, info or debug")
	add.Flags().StringVar(&meter, "meter", "", "meter for logging")
	add.Flags().IntVar(&tier, "tier", 0, "evaluation tier 0..3 (lower tiers first)")
	del := &cobra.Command{
		Use:   "del ENTITY [DIRECTION [PRIORITY MATCH]]",
		Short: "Delete ACLs of a switch or port group: all, one direction, or one ACL",
		Args:  cobra.RangeArgs(1, 4),
		RunE: o.withAPI(func(a *api, args []string) error {
			req := &govnv1.DeleteACLRequest{IfExists: ifExists, Name: name}
			if delTier >= 0 {
				t := int32(delTier)
				req.Tier = &t
			}
			if pg {
				req.PortGroup = args[0]
			} else {
				req.Switch = args[0]
			}
			switch len(args) {
			case 3:
				return fmt.Errorf("give both PRIORITY and MATCH, or neither")
			case 4:
				prio, err := strconv.Atoi(args[2])
				if err != nil {
					return fmt.Errorf("PRIORITY %q: not an integer", args[2])
				}
				p := int32(prio)
				req.Priority = &p
				req.Match = args[3]
				fallthrough
			case 2:
				req.Direction = args[1]
			}
			r, err := a.acl().DeleteACL(a.ctx, req)
			if err != nil {
				return a.err(err)
			}
			return a.printDeleted(r)
		}),
	}
	del.Flags().BoolVar(&ifExists, "if-exists", false, "no error if no ACL matches")
	del.Flags().StringVar(&name, "name", "", "only ACLs with this name")
	del.Flags().IntVar(&delTier, "tier", -1, "only ACLs of this tier (0..3; -1: any tier)")
	list := &cobra.Command{
		Use: "list [ENTITY]", Short: "List ACLs (of one switch or port group), in ovn-nbctl acl-list order", Args: cobra.MaximumNArgs(1),
		RunE: o.withAPI(func(a *api, args []string) error {
			req := &govnv1.ListACLsRequest{}
			if len(args) == 1 {
				if pg {
					req.PortGroup = args[0]
				} else {
					req.Switch = args[0]
				}
			}
			r, err := a.acl().ListACLs(a.ctx, req)
			if err != nil {
				return a.err(err)
			}
			return a.o.print(protoList(r.Items), func(w io.Writer) error {
				var rows [][]string
				for _, x := range r.Items {
					ent := x.Switch
					if x.PortGroup != "" {
						ent = "@" + x.PortGroup
					}
					rows = append(rows, []string{ent, x.Direction, strconv.Itoa(int(x.Tier)), strconv.Itoa(int(x.Priority)), x.Match, x.Action, aclLog(x)})
				}
				return printTable(w, []string{"entity", "direction", "tier", "priority", "match", "action", "log"}, rows)
			})
		}),
	}
	for _, c := range []*cobra.Command{add, del, list} {
		c.Flags().BoolVar(&pg, "port-group", false, "ENTITY is a port group, not a switch")
	}
	cmd.AddCommand(add, del, list)
	return cmd
}

func aclLog(a *govnv1.ACL) string {
	if !a.Log {
		return "-"
	}
	var parts []string
	if a.Name != "" {
		parts = append(parts, "name="+a.Name)
	}
	if a.Severity != "" {
		parts = append(parts, "severity="+a.Severity)
	}
	if a.Meter != "" {
		parts = append(parts, "meter="+a.Meter)
	}
	return "log(" + strings.Join(parts, ",") + ")"
}

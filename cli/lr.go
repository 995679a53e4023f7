package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	govnv1 "github.com/govn/govn/api/govnv1"
)

func init() {
	register(newLRCommand)
	register(newLRPCommand)
	register(newRouteCommand)
	register(newNATCommand)
}

func newLRCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "lr", Short: "Logical routers: add, del, list, show, set-option"}
	var mayExist, ifExists bool
	var chassis string
	var opts, remove []string
	add := &cobra.Command{
		Use: "add ROUTER", Short: "Create a logical router (--chassis makes it a gateway router)", Args: cobra.ExactArgs(1),
		RunE: o.withAPI(func(a *api, args []string) error {
			options, err := parseKV("--option", opts)
			if err != nil {
				return err
			}
			if chassis != "" {
				if options == nil {
					options = map[string]string{}
				}
				options["chassis"] = chassis
			}
			got, err := a.lr().CreateLogicalRouter(a.ctx, &govnv1.CreateLogicalRouterRequest{MayExist: mayExist,
				LogicalRouter: &govnv1.LogicalRouter{Name: args[0], Options: options}})
			if err != nil {
				return a.err(err)
			}
			return a.printCreated(got, got.Uuid)
		}),
	}
	add.Flags().BoolVar(&mayExist, "may-exist", false, "no error if the router exists")
	add.Flags().StringVar(&chassis, "chassis", "", "gateway router: the chassis it is bound to (options:chassis)")
	add.Flags().StringArrayVar(&opts, "option", nil, "KEY=VALUE option, e.g. lb_force_snat_ip=router_ip (repeatable)")
	setOpt := &cobra.Command{
		Use: "set-option ROUTER [KEY=VALUE...] [--remove-option KEY...]", Short: "Set or remove router options (e.g. chassis=ch1) in one transaction, keeping the others",
		Args: cobra.MinimumNArgs(1), ValidArgsFunction: o.completeNames("lr"),
		RunE: o.withAPI(func(a *api, args []string) error {
			set, err := parseKV("KEY=VALUE", args[1:])
			if err != nil {
				return err
			}
			got, err := a.lr().SetLogicalRouterOptions(a.ctx, &govnv1.SetOptionsRequest{Name: args[0], Set: set, Remove: remove})
			if err != nil {
				return a.err(err)
			}
			return a.printUpdated(got)
		}),
	}
	setOpt.Flags().StringArrayVar(&remove, "remove-option", nil, "option KEY to remove (repeatable)")
	show := &cobra.Command{
		Use: "show ROUTER", Short: "Show one logical router", Args: cobra.ExactArgs(1),
		ValidArgsFunction: o.completeNames("lr"),
		RunE: o.withAPI(func(a *api, args []string) error {
			r, err := a.lr().GetLogicalRouter(a.ctx, &govnv1.GetLogicalRouterRequest{Name: args[0]})
			if err != nil {
				return a.err(err)
			}
			return a.o.print(protoJSON(r), func(w io.Writer) error {
				rows := [][]string{{"name", r.Name}, {"uuid", r.Uuid}, {"ports", dash(strings.Join(r.Ports, ","))},
					{"options", kvString(r.Options)}, {"routes", fmt.Sprint(r.StaticRouteCount)}, {"nat", fmt.Sprint(r.NatCount)},
					{"load balancers", dash(strings.Join(r.LoadBalancers, ","))}}
				return printTable(w, []string{"field", "value"}, rows)
			})
		}),
	}
	del := &cobra.Command{
		Use: "del ROUTER", Short: "Delete a logical router with its ports, routes and NAT rules", Args: cobra.ExactArgs(1),
		ValidArgsFunction: o.completeNames("lr"),
		RunE: o.withAPI(func(a *api, args []string) error {
			r, err := a.lr().DeleteLogicalRouter(a.ctx, &govnv1.DeleteLogicalRouterRequest{Name: args[0], IfExists: ifExists})
			if err != nil {
				return a.err(err)
			}
			return a.printDeleted(r)
		}),
	}
	del.Flags().BoolVar(&ifExists, "if-exists", false, "no error if it does not exist")
	list := &cobra.Command{
		Use: "list", Short: "List logical routers", Args: cobra.NoArgs,
		RunE: o.withAPI(func(a *api, _ []string) error {
			r, err := a.lr().ListLogicalRouters(a.ctx, &govnv1.ListLogicalRoutersRequest{})
			if err != nil {
				return a.err(err)
			}
			return a.o.print(protoList(r.Items), func(w io.Writer) error {
				var rows [][]string
				for _, x := range r.Items {
					rows = append(rows, []string{x.Name, dash(strings.Join(x.Ports, ",")), fmt.Sprint(x.StaticRouteCount), fmt.Sprint(x.NatCount), dash(strings.Join(x.LoadBalancers, ",")), dash(x.Options["chassis"])})
				}
				return printTable(w, []string{"name", "ports", "routes", "nat", "load balancers", "chassis"}, rows)
			})
		}),
	}
	cmd.AddCommand(add, del, list, show, setOpt)
	return cmd
}

func newLRPCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "lrp", Short: "Logical router ports: add, del, list, set-networks, set-gateway-chassis, del-gateway-chassis, get-gateway-chassis"}
	var mayExist, ifExists bool
	var peer string
	add := &cobra.Command{
		Use: "add ROUTER PORT MAC NETWORK...", Short: "Create a router port (e.g. lrp add lr0 lr0-sw0 00:00:00:00:ff:01 10.0.0.1/24)",
		Args: cobra.MinimumNArgs(4), ValidArgsFunction: o.completeNames("lr"),
		RunE: o.withAPI(func(a *api, args []string) error {
			got, err := a.lrp().CreateLogicalRouterPort(a.ctx, &govnv1.CreateLogicalRouterPortRequest{MayExist: mayExist,
				LogicalRouterPort: &govnv1.LogicalRouterPort{Router: args[0], Name: args[1], Mac: args[2], Networks: args[3:], Peer: peer}})
			if err != nil {
				return a.err(err)
			}
			return a.printCreated(got, got.Uuid)
		}),
	}
	add.Flags().BoolVar(&mayExist, "may-exist", false, "no error if the port exists on this router")
	add.Flags().StringVar(&peer, "peer", "", "peer router port")
	set := &cobra.Command{
		Use: "set-networks PORT NETWORK...", Short: "Replace a router port's networks", Args: cobra.MinimumNArgs(2),
		ValidArgsFunction: o.completeNames("lrp"),
		RunE: o.withAPI(func(a *api, args []string) error {
			got, err := a.lrp().UpdateLogicalRouterPort(a.ctx, &govnv1.UpdateLogicalRouterPortRequest{
				LogicalRouterPort: &govnv1.LogicalRouterPort{Name: args[0], Networks: args[1:]}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"networks"}}})
			if err != nil {
				return a.err(err)
			}
			return a.printUpdated(got)
		}),
	}
	del := &cobra.Command{
		Use: "del PORT", Short: "Delete a router port", Args: cobra.ExactArgs(1),
		ValidArgsFunction: o.completeNames("lrp"),
		RunE: o.withAPI(func(a *api, args []string) error {
			r, err := a.lrp().DeleteLogicalRouterPort(a.ctx, &govnv1.DeleteLogicalRouterPortRequest{Name: args[0], IfExists: ifExists})
			if err != nil {
				return a.err(err)
			}
			return a.printDeleted(r)
		}),
	}
	del.Flags().BoolVar(&ifExists, "if-exists", false, "no error if it does not exist")
	list := &cobra.Command{
		Use: "list [ROUTER]", Short: "List router ports (of one router)", Args: cobra.MaximumNArgs(1),
		ValidArgsFunction: o.completeNames("lr"),
		RunE: o.withAPI(func(a *api, args []string) error {
			req := &govnv1.ListLogicalRouterPortsRequest{}
			if len(args) == 1 {
				req.Router = args[0]
			}
			r, err := a.lrp().ListLogicalRouterPorts(a.ctx, req)
			if err != nil {
				return a.err(err)
			}
			return a.o.print(protoList(r.Items), func(w io.Writer) error {
				var rows [][]string
				for _, x := range r.Items {
					rows = append(rows, []string{x.Name, x.Router, x.Mac, strings.Join(x.Networks, " "), dash(x.Peer), dash(gatewayList(x.GatewayChassis))})
				}
				return printTable(w, []string{"name", "router", "mac", "networks", "peer", "gateway chassis"}, rows)
			})
		}),
	}
	var gwIfExists bool
	setGW := &cobra.Command{
		Use: "set-gateway-chassis PORT CHASSIS [PRIORITY]", Short: "Make a router port a distributed gateway port on CHASSIS (priority 0..32767, default 0; the highest is active)",
		Args: cobra.RangeArgs(2, 3), ValidArgsFunction: o.completeNames("lrp"),
		RunE: o.withAPI(func(a *api, args []string) error {
			prio := int64(0)
			if len(args) == 3 {
				n, err := strconv.ParseInt(args[2], 10, 32)
				if err != nil {
					return fmt.Errorf("PRIORITY %q: not an integer", args[2])
				}
				prio = n
			}
			got, err := a.lrp().SetGatewayChassis(a.ctx, &govnv1.SetGatewayChassisRequest{Port: args[0], ChassisName: args[1], Priority: int32(prio)})
			if err != nil {
				return a.err(err)
			}
			return a.printUpdated(got)
		}),
	}
	delGW := &cobra.Command{
		Use: "del-gateway-chassis PORT CHASSIS", Short: "Remove a gateway chassis from a router port", Args: cobra.ExactArgs(2),
		ValidArgsFunction: o.completeNames("lrp"),
		RunE: o.withAPI(func(a *api, args []string) error {
			got, err := a.lrp().DeleteGatewayChassis(a.ctx, &govnv1.DeleteGatewayChassisRequest{Port: args[0], ChassisName: args[1], IfExists: gwIfExists})
			if err != nil {
				return a.err(err)
			}
			return a.printUpdated(got)
		}),
	}
	delGW.Flags().BoolVar(&gwIfExists, "if-exists", false, "no error if the port has no such gateway chassis")
	getGW := &cobra.Command{
		Use: "get-gateway-chassis PORT", Short: "List a router port's gateway chassis, highest priority first", Args: cobra.ExactArgs(1),
		ValidArgsFunction: o.completeNames("lrp"),
		RunE: o.withAPI(func(a *api, args []string) error {
			p, err := a.lrp().GetLogicalRouterPort(a.ctx, &govnv1.GetLogicalRouterPortRequest{Name: args[0]})
			if err != nil {
				return a.err(err)
			}
			return a.o.print(protoList(p.GatewayChassis), func(w io.Writer) error {
				var rows [][]string
				for _, g := range p.GatewayChassis {
					rows = append(rows, []string{g.Name, g.ChassisName, fmt.Sprint(g.Priority)})
				}
				return printTable(w, []string{"name", "chassis", "priority"}, rows)
			})
		}),
	}
	cmd.AddCommand(add, del, list, set, setGW, delGW, getGW)
	return cmd
}

// gatewayList is "chassis:priority" of each gateway chassis, highest first.
func gatewayList(gs []*govnv1.GatewayChassis) string {
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = fmt.Sprintf("%s:%d", g.ChassisName, g.Priority)
	}
	return strings.Join(parts, ",")
}

func newRouteCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "route", Short: "Static routes of a router: add, del, list"}
	var mayExist, ifExists bool
	var policy, table, outPort string
	add := &cobra.Command{
		Use: "add ROUTER PREFIX NEXTHOP", Short: "Add a static route (NEXTHOP may be \"discard\")", Args: cobra.ExactArgs(3),
		ValidArgsFunction: o.completeNames("lr"),
		RunE: o.withAPI(func(a *api, args []string) error {
			got, err := a.route().CreateStaticRoute(a.ctx, &govnv1.CreateStaticRouteRequest{MayExist: mayExist, StaticRoute: &govnv1.StaticRoute{
				Router: args[0], IpPrefix: args[1], Nexthop: args[2], Policy: policy, RouteTable: table, OutputPort: outPort}})
			if err != nil {
				return a.err(err)
			}
			return a.printCreated(got, got.Uuid)
		}),
	}
	add.Flags().BoolVar(&mayExist, "may-exist", false, "no error if the same route exists")
	add.Flags().StringVar(&policy, "policy", "", "dst-ip (default) or src-ip")
	add.Flags().StringVar(&outPort, "output-port", "", "router port to send matching packets out of")
	add.Flags().StringVar(&table, "route-table", "", "route table")
	del := &cobra.Command{
		Use: "del ROUTER [PREFIX [NEXTHOP]]", Short: "Delete routes: all, to a prefix, or one", Args: cobra.RangeArgs(1, 3),
		ValidArgsFunction: o.completeNames("lr"),
		RunE: o.withAPI(func(a *api, args []string) error {
			req := &govnv1.DeleteStaticRouteRequest{Router: args[0], IfExists: ifExists, RouteTable: table}
			if len(args) > 1 {
				req.IpPrefix = args[1]
			}
			if len(args) > 2 {
				req.Nexthop = args[2]
			}
			r, err := a.route().DeleteStaticRoute(a.ctx, req)
			if err != nil {
				return a.err(err)
			}
			return a.printDeleted(r)
		}),
	}
	del.Flags().BoolVar(&ifExists, "if-exists", false, "no error if no route matches")
	del.Flags().StringVar(&table, "route-table", "", "route table")
	list := &cobra.Command{
		Use: "list [ROUTER]", Short: "List static routes", Args: cobra.MaximumNArgs(1),
		ValidArgsFunction: o.completeNames("lr"),
		RunE: o.withAPI(func(a *api, args []string) error {
			req := &govnv1.ListStaticRoutesRequest{}
			if len(args) == 1 {
				req.Router = args[0]
			}
			r, err := a.route().ListStaticRoutes(a.ctx, req)
			if err != nil {
				return a.err(err)
			}
			return a.o.print(protoList(r.Items), func(w io.Writer) error {
				var rows [][]string
				for _, x := range r.Items {
					rows = append(rows, []string{x.Router, x.IpPrefix, x.Nexthop, dash(x.OutputPort), policyName(x.Policy), dash(x.RouteTable)})
				}
				return printTable(w, []string{"router", "prefix", "nexthop", "output port", "policy", "table"}, rows)
			})
		}),
	}
	cmd.AddCommand(add, del, list)
	return cmd
}

func policyName(p string) string {
	if p == "" {
		return "dst-ip"
	}
	return p
}

func newNATCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "nat", Short: "NAT rules of a router: add, del, list"}
	var mayExist, ifExists bool
	var portRange string
	add := &cobra.Command{
		Use:   "add ROUTER TYPE EXTERNAL_IP LOGICAL_IP [LOGICAL_PORT EXTERNAL_MAC]",
		Short: "Add a NAT rule (TYPE snat, dnat or dnat_and_snat; a port and MAC make it distributed)",
		Args:  cobra.RangeArgs(4, 6), ValidArgsFunction: o.completeNames("lr"),
		RunE: o.withAPI(func(a *api, args []string) error {
			n := &govnv1.NAT{Router: args[0], Type: args[1], ExternalIp: args[2], LogicalIp: args[3], ExternalPortRange: portRange}
			switch len(args) {
			case 5:
				return fmt.Errorf("give both LOGICAL_PORT and EXTERNAL_MAC, or neither")
			case 6:
				n.LogicalPort, n.ExternalMac = args[4], args[5]
			}
			got, err := a.nat().CreateNAT(a.ctx, &govnv1.CreateNATRequest{MayExist: mayExist, Nat: n})
			if err != nil {
				return a.err(err)
			}
			return a.printCreated(got, got.Uuid)
		}),
	}
	add.Flags().BoolVar(&mayExist, "may-exist", false, "no error if the same rule exists")
	add.Flags().StringVar(&portRange, "port-range", "", "external port range N or N-M")
	del := &cobra.Command{
		Use: "del ROUTER [TYPE [IP]]", Short: "Delete NAT rules: all, of a type, or one (IP: external for dnat*, logical for snat)",
		Args: cobra.RangeArgs(1, 3), ValidArgsFunction: o.completeNames("lr"),
		RunE: o.withAPI(func(a *api, args []string) error {
			req := &govnv1.DeleteNATRequest{Router: args[0], IfExists: ifExists}
			if len(args) > 1 {
				req.Type = args[1]
			}
			if len(args) > 2 {
				req.Ip = args[2]
			}
			r, err := a.nat().DeleteNAT(a.ctx, req)
			if err != nil {
				return a.err(err)
			}
			return a.printDeleted(r)
		}),
	}
	del.Flags().BoolVar(&ifExists, "if-exists", false, "no error if no rule matches")
	list := &cobra.Command{
		Use: "list [ROUTER]", Short: "List NAT rules", Args: cobra.MaximumNArgs(1),
		ValidArgsFunction: o.completeNames("lr"),
		RunE: o.withAPI(func(a *api, args []string) error {
			req := &govnv1.ListNATsRequest{}
			if len(args) == 1 {
				req.Router = args[0]
			}
			r, err := a.nat().ListNATs(a.ctx, req)
			if err != nil {
				return a.err(err)
			}
			return a.o.print(protoList(r.Items), func(w io.Writer) error {
				var rows [][]string
				for _, x := range r.Items {
					rows = append(rows, []string{x.Router, x.Type, x.ExternalIp, x.LogicalIp, dash(x.ExternalMac), dash(x.LogicalPort)})
				}
				return printTable(w, []string{"router", "type", "external ip", "logical ip", "external mac", "logical port"}, rows)
			})
		}),
	}
	cmd.AddCommand(add, del, list)
	return cmd
}

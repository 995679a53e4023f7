package cli

import (
	"fmt"
	"io"
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
	cmd := &cobra.Command{Use: "lr", Short: "Logical routers: add, del, list"}
	var mayExist, ifExists bool
	add := &cobra.Command{
		Use: "add ROUTER", Short: "Create a logical router", Args: cobra.ExactArgs(1),
		RunE: o.withAPI(func(a *api, args []string) error {
			got, err := a.lr().CreateLogicalRouter(a.ctx, &govnv1.CreateLogicalRouterRequest{MayExist: mayExist, LogicalRouter: &govnv1.LogicalRouter{Name: args[0]}})
			if err != nil {
				return a.err(err)
			}
			return a.printCreated(got, got.Uuid)
		}),
	}
	add.Flags().BoolVar(&mayExist, "may-exist", false, "no error if the router exists")
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
					rows = append(rows, []string{x.Name, dash(strings.Join(x.Ports, ",")), fmt.Sprint(x.StaticRouteCount), fmt.Sprint(x.NatCount), dash(strings.Join(x.LoadBalancers, ","))})
				}
				return printTable(w, []string{"name", "ports", "routes", "nat", "load balancers"}, rows)
			})
		}),
	}
	cmd.AddCommand(add, del, list)
	return cmd
}

func newLRPCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "lrp", Short: "Logical router ports: add, del, list, set-networks"}
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
					rows = append(rows, []string{x.Name, x.Router, x.Mac, strings.Join(x.Networks, " "), dash(x.Peer)})
				}
				return printTable(w, []string{"name", "router", "mac", "networks", "peer"}, rows)
			})
		}),
	}
	cmd.AddCommand(add, del, list, set)
	return cmd
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

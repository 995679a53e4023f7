package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	govnv1 "github.com/govn/govn/api/govnv1"
)

func init() { register(newLBCommand) }

func newLBCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "lb", Short: "Load balancers: add, del, list, attach, detach, set-option"}
	var mayExist, ifExists bool
	var protocol string
	var opts, remove []string
	add := &cobra.Command{
		Use:   "add LB VIP[:PORT] BACKEND[,BACKEND...]",
		Short: "Create a load balancer, or add a VIP to it with --may-exist (e.g. lb add lb0 10.0.0.100:80 10.0.0.11:8080,10.0.0.12:8080)",
		Args:  cobra.ExactArgs(3),
		RunE: o.withAPI(func(a *api, args []string) error {
			options, err := parseKV("--option", opts)
			if err != nil {
				return err
			}
			lb := &govnv1.LoadBalancer{Name: args[0], Vips: map[string]string{args[1]: args[2]}, Protocol: protocol, Options: options}
			existing, err := a.lb().GetLoadBalancer(a.ctx, &govnv1.GetLoadBalancerRequest{Name: args[0]})
			if err == nil && mayExist {
				// Add the VIP (and any --option) to the existing balancer.
				vips := existing.Vips
				if vips == nil {
					vips = map[string]string{}
				}
				vips[args[1]] = args[2]
				paths := []string{"vips"}
				merged := existing.Options
				if len(options) > 0 {
					if merged == nil {
						merged = map[string]string{}
					}
					for k, v := range options {
						merged[k] = v
					}
					paths = append(paths, "options")
				}
				got, err := a.lb().UpdateLoadBalancer(a.ctx, &govnv1.UpdateLoadBalancerRequest{
					LoadBalancer: &govnv1.LoadBalancer{Name: args[0], Vips: vips, Options: merged}, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
				if err != nil {
					return a.err(err)
				}
				return a.printCreated(got, got.Uuid)
			}
			got, err := a.lb().CreateLoadBalancer(a.ctx, &govnv1.CreateLoadBalancerRequest{LoadBalancer: lb})
			if err != nil {
				return a.err(err)
			}
			return a.printCreated(got, got.Uuid)
		}),
	}
	add.Flags().BoolVar(&mayExist, "may-exist", false, "if the load balancer exists, add or replace this VIP")
	add.Flags().StringVar(&protocol, "protocol", "", "tcp (default), udp or sctp")
	add.Flags().StringArrayVar(&opts, "option", nil, "KEY=VALUE option: reject=true, skip_snat=true, hairpin_snat_ip=IP[ IP6], affinity_timeout=SECONDS (repeatable)")
	setOpt := &cobra.Command{
		Use: "set-option LB [KEY=VALUE...] [--remove-option KEY...]", Short: "Set or remove load balancer options in one transaction, keeping the others",
		Args: cobra.MinimumNArgs(1), ValidArgsFunction: o.completeNames("lb"),
		RunE: o.withAPI(func(a *api, args []string) error {
			set, err := parseKV("KEY=VALUE", args[1:])
			if err != nil {
				return err
			}
			got, err := a.lb().SetLoadBalancerOptions(a.ctx, &govnv1.SetOptionsRequest{Name: args[0], Set: set, Remove: remove})
			if err != nil {
				return a.err(err)
			}
			return a.printUpdated(got)
		}),
	}
	setOpt.Flags().StringArrayVar(&remove, "remove-option", nil, "option KEY to remove (repeatable)")
	del := &cobra.Command{
		Use: "del LB", Short: "Delete a load balancer (detaching it everywhere)", Args: cobra.ExactArgs(1),
		ValidArgsFunction: o.completeNames("lb"),
		RunE: o.withAPI(func(a *api, args []string) error {
			r, err := a.lb().DeleteLoadBalancer(a.ctx, &govnv1.DeleteLoadBalancerRequest{Name: args[0], IfExists: ifExists})
			if err != nil {
				return a.err(err)
			}
			return a.printDeleted(r)
		}),
	}
	del.Flags().BoolVar(&ifExists, "if-exists", false, "no error if it does not exist")
	list := &cobra.Command{
		Use: "list", Short: "List load balancers, one VIP a line", Args: cobra.NoArgs,
		RunE: o.withAPI(func(a *api, _ []string) error {
			r, err := a.lb().ListLoadBalancers(a.ctx, &govnv1.ListLoadBalancersRequest{})
			if err != nil {
				return a.err(err)
			}
			return a.o.print(protoList(r.Items), func(w io.Writer) error {
				var rows [][]string
				for _, x := range r.Items {
					vips := make([]string, 0, len(x.Vips))
					for v := range x.Vips {
						vips = append(vips, v)
					}
					slices.Sort(vips)
					opts := "-"
					if len(x.Options) > 0 {
						opts = kvString(x.Options)
					}
					if len(vips) == 0 {
						rows = append(rows, []string{x.Name, policyProto(x.Protocol), "-", "-", opts})
					}
					for i, v := range vips {
						name, o := x.Name, opts
						if i > 0 {
							name, o = "", ""
						}
						rows = append(rows, []string{name, policyProto(x.Protocol), v, x.Vips[v], o})
					}
				}
				return printTable(w, []string{"name", "protocol", "vip", "backends", "options"}, rows)
			})
		}),
	}
	var router bool
	attach := func(use string, on bool) *cobra.Command {
		c := &cobra.Command{
			Use: use + " LB SWITCH|ROUTER", Short: fmt.Sprintf("%s a load balancer %s a switch (or, with --router, a router)", strings.ToUpper(use[:1])+use[1:], map[bool]string{true: "to", false: "from"}[on]),
			Args: cobra.ExactArgs(2), ValidArgsFunction: o.completeNames("lb"),
			RunE: o.withAPI(func(a *api, args []string) error {
				// One RPC, one OVSDB mutate: concurrent attaches and
				// detaches of other load balancers are never lost.
				req := &govnv1.AttachLoadBalancerRequest{LoadBalancer: args[0]}
				if router {
					req.Router = args[1]
				} else {
					req.Switch = args[1]
				}
				call := a.lb().AttachLoadBalancer
				if !on {
					call = a.lb().DetachLoadBalancer
				}
				if _, err := call(a.ctx, req); err != nil {
					return a.err(err)
				}
				return a.afterWrite()
			}),
		}
		c.Flags().BoolVar(&router, "router", false, "the target is a logical router")
		return c
	}
	cmd.AddCommand(add, del, list, setOpt, attach("attach", true), attach("detach", false))
	return cmd
}

func policyProto(p string) string {
	if p == "" {
		return "tcp"
	}
	return p
}

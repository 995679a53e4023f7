package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	govnv1 "github.com/govn/govn/api/govnv1"
)

func init() { register(newShowCommand) }

// showData is `govnctl show` for -o json|yaml.
type showData struct {
	Switches []showSwitch `json:"switches"`
	Routers  []showRouter `json:"routers"`
}

type showSwitch struct {
	Switch any   `json:"switch"`
	Ports  []any `json:"ports"`
}

type showRouter struct {
	Router any   `json:"router"`
	Ports  []any `json:"ports"`
	NAT    []any `json:"nat"`
}

func newShowCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "show [SWITCH|ROUTER]",
		Short: "Show switches and routers as a tree (like ovn-nbctl show)",
		Args:  cobra.MaximumNArgs(1),
		RunE: o.withAPI(func(a *api, args []string) error {
			only := ""
			if len(args) == 1 {
				only = args[0]
			}
			switches, err := a.ls().ListLogicalSwitches(a.ctx, &govnv1.ListLogicalSwitchesRequest{})
			if err != nil {
				return a.err(err)
			}
			ports, err := a.lsp().ListLogicalSwitchPorts(a.ctx, &govnv1.ListLogicalSwitchPortsRequest{})
			if err != nil {
				return a.err(err)
			}
			routers, err := a.lr().ListLogicalRouters(a.ctx, &govnv1.ListLogicalRoutersRequest{})
			if err != nil {
				return a.err(err)
			}
			rports, err := a.lrp().ListLogicalRouterPorts(a.ctx, &govnv1.ListLogicalRouterPortsRequest{})
			if err != nil {
				return a.err(err)
			}
			nats, err := a.nat().ListNATs(a.ctx, &govnv1.ListNATsRequest{})
			if err != nil {
				return a.err(err)
			}
			var data showData
			type swTree struct {
				ls    *govnv1.LogicalSwitch
				ports []*govnv1.LogicalSwitchPort
			}
			type lrTree struct {
				lr    *govnv1.LogicalRouter
				ports []*govnv1.LogicalRouterPort
				nat   []*govnv1.NAT
			}
			var sws []swTree
			var lrs []lrTree
			found := only == ""
			for _, ls := range switches.Items {
				if only != "" && ls.Name != only {
					continue
				}
				found = true
				t := swTree{ls: ls}
				d := showSwitch{Switch: protoJSON(ls), Ports: []any{}}
				for _, p := range ports.Items {
					if p.Switch == ls.Name {
						t.ports = append(t.ports, p)
						d.Ports = append(d.Ports, protoJSON(p))
					}
				}
				sws = append(sws, t)
				data.Switches = append(data.Switches, d)
			}
			for _, lr := range routers.Items {
				if only != "" && lr.Name != only {
					continue
				}
				found = true
				t := lrTree{lr: lr}
				d := showRouter{Router: protoJSON(lr), Ports: []any{}, NAT: []any{}}
				for _, p := range rports.Items {
					if p.Router == lr.Name {
						t.ports = append(t.ports, p)
						d.Ports = append(d.Ports, protoJSON(p))
					}
				}
				for _, n := range nats.Items {
					if n.Router == lr.Name {
						t.nat = append(t.nat, n)
						d.NAT = append(d.NAT, protoJSON(n))
					}
				}
				lrs = append(lrs, t)
				data.Routers = append(data.Routers, d)
			}
			if !found {
				return fmt.Errorf("no logical switch or router named %q", only)
			}
			if data.Switches == nil {
				data.Switches = []showSwitch{}
			}
			if data.Routers == nil {
				data.Routers = []showRouter{}
			}
			return a.o.print(data, func(w io.Writer) error {
				for _, t := range sws {
					writeSwitchTree(w, t.ls, t.ports)
				}
				for _, t := range lrs {
					fmt.Fprintf(w, "router %s (%s)\n", t.lr.Uuid, t.lr.Name)
					for _, lb := range t.lr.LoadBalancers {
						fmt.Fprintf(w, "    load_balancer %s\n", lb)
					}
					for _, p := range t.ports {
						fmt.Fprintf(w, "    port %s\n", p.Name)
						fmt.Fprintf(w, "        mac: %q\n", p.Mac)
						fmt.Fprintf(w, "        networks: %s\n", quoteList(p.Networks))
						if p.Peer != "" {
							fmt.Fprintf(w, "        peer: %s\n", p.Peer)
						}
					}
					for _, n := range t.nat {
						fmt.Fprintf(w, "    nat %s\n", n.Uuid)
						fmt.Fprintf(w, "        external ip: %q\n", n.ExternalIp)
						fmt.Fprintf(w, "        logical ip: %q\n", n.LogicalIp)
						if n.LogicalPort != "" {
							fmt.Fprintf(w, "        logical port: %q\n", n.LogicalPort)
							fmt.Fprintf(w, "        external mac: %q\n", n.ExternalMac)
						}
						fmt.Fprintf(w, "        type: %q\n", n.Type)
					}
				}
				return nil
			})
		}),
	}
}

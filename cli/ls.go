package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	govnv1 "github.com/govn/govn/api/govnv1"
)

func init() { register(newLSCommand) }

func newLSCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "ls", Short: "Logical switches: add, del, list, show"}
	var mayExist, ifExists bool
	add := &cobra.Command{
		Use: "add SWITCH", Short: "Create a logical switch", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := o.connect(cmd)
			if err != nil {
				return err
			}
			defer a.close()
			ls, err := a.ls().CreateLogicalSwitch(a.ctx, &govnv1.CreateLogicalSwitchRequest{
				LogicalSwitch: &govnv1.LogicalSwitch{Name: args[0]}, MayExist: mayExist})
			if err != nil {
				return a.err(err)
			}
			if err := a.afterWrite(); err != nil {
				return err
			}
			return o.print(protoJSON(ls), func(w io.Writer) error { _, err := fmt.Fprintln(w, ls.Uuid); return err })
		},
	}
	add.Flags().BoolVar(&mayExist, "may-exist", false, "no error if the switch already exists")
	del := &cobra.Command{
		Use: "del SWITCH", Short: "Delete a logical switch with its ports and ACLs", Args: cobra.ExactArgs(1),
		ValidArgsFunction: o.completeNames("ls"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := o.connect(cmd)
			if err != nil {
				return err
			}
			defer a.close()
			if _, err := a.ls().DeleteLogicalSwitch(a.ctx, &govnv1.DeleteLogicalSwitchRequest{Name: args[0], IfExists: ifExists}); err != nil {
				return a.err(err)
			}
			return a.afterWrite()
		},
	}
	del.Flags().BoolVar(&ifExists, "if-exists", false, "no error if the switch does not exist")
	list := &cobra.Command{
		Use: "list", Short: "List logical switches", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := o.connect(cmd)
			if err != nil {
				return err
			}
			defer a.close()
			r, err := a.ls().ListLogicalSwitches(a.ctx, &govnv1.ListLogicalSwitchesRequest{})
			if err != nil {
				return a.err(err)
			}
			return o.print(protoList(r.Items), func(w io.Writer) error {
				var rows [][]string
				for _, ls := range r.Items {
					rows = append(rows, []string{ls.Name, fmt.Sprint(len(ls.Ports)), fmt.Sprint(ls.AclCount), dash(strings.Join(ls.LoadBalancers, ","))})
				}
				return printTable(w, []string{"name", "ports", "acls", "load balancers"}, rows)
			})
		},
	}
	show := &cobra.Command{
		Use: "show SWITCH", Short: "Show a logical switch with its ports", Args: cobra.ExactArgs(1),
		ValidArgsFunction: o.completeNames("ls"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := o.connect(cmd)
			if err != nil {
				return err
			}
			defer a.close()
			ls, err := a.ls().GetLogicalSwitch(a.ctx, &govnv1.GetLogicalSwitchRequest{Name: args[0]})
			if err != nil {
				return a.err(err)
			}
			ports, err := a.lsp().ListLogicalSwitchPorts(a.ctx, &govnv1.ListLogicalSwitchPortsRequest{Switch: args[0]})
			if err != nil {
				return a.err(err)
			}
			v := struct {
				Switch any   `json:"switch"`
				Ports  []any `json:"ports"`
			}{Switch: protoJSON(ls)}
			for _, p := range ports.Items {
				v.Ports = append(v.Ports, protoJSON(p))
			}
			return o.print(v, func(w io.Writer) error {
				writeSwitchTree(w, ls, ports.Items)
				return nil
			})
		},
	}
	cmd.AddCommand(add, del, list, show)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeSwitchTree prints a switch the way `govnctl show` does.
func writeSwitchTree(w io.Writer, ls *govnv1.LogicalSwitch, ports []*govnv1.LogicalSwitchPort) {
	fmt.Fprintf(w, "switch %s (%s)\n", ls.Uuid, ls.Name)
	for _, lb := range ls.LoadBalancers {
		fmt.Fprintf(w, "    load_balancer %s\n", lb)
	}
	for _, p := range ports {
		fmt.Fprintf(w, "    port %s\n", p.Name)
		if p.Type != "" {
			fmt.Fprintf(w, "        type: %s\n", p.Type)
		}
		if p.ParentName != "" {
			fmt.Fprintf(w, "        parent: %s\n", p.ParentName)
		}
		if p.Tag != nil {
			fmt.Fprintf(w, "        tag: %d\n", *p.Tag)
		}
		if rp := p.Options["router-port"]; rp != "" {
			fmt.Fprintf(w, "        router-port: %s\n", rp)
		}
		if len(p.Addresses) > 0 {
			fmt.Fprintf(w, "        addresses: %s\n", quoteList(p.Addresses))
		}
		if p.DynamicAddresses != "" {
			fmt.Fprintf(w, "        dynamic addresses: %q\n", p.DynamicAddresses)
		}
	}
}

// quoteList prints ["a", "b"].
func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// completeNames completes resource names from the server.
func (o *options) completeNames(kind string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 && kind != "lsp" {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		a, err := o.connect(cmd)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		defer a.close()
		var names []string
		switch kind {
		case "ls":
			if r, err := a.ls().ListLogicalSwitches(a.ctx, &govnv1.ListLogicalSwitchesRequest{}); err == nil {
				for _, x := range r.Items {
					names = append(names, x.Name)
				}
			}
		case "lsp":
			if r, err := a.lsp().ListLogicalSwitchPorts(a.ctx, &govnv1.ListLogicalSwitchPortsRequest{}); err == nil {
				for _, x := range r.Items {
					names = append(names, x.Name)
				}
			}
		case "lr":
			if r, err := a.lr().ListLogicalRouters(a.ctx, &govnv1.ListLogicalRoutersRequest{}); err == nil {
				for _, x := range r.Items {
					names = append(names, x.Name)
				}
			}
		case "lrp":
			if r, err := a.lrp().ListLogicalRouterPorts(a.ctx, &govnv1.ListLogicalRouterPortsRequest{}); err == nil {
				for _, x := range r.Items {
					names = append(names, x.Name)
				}
			}
		case "as":
			if r, err := a.as().ListAddressSets(a.ctx, &govnv1.ListAddressSetsRequest{}); err == nil {
				for _, x := range r.Items {
					names = append(names, x.Name)
				}
			}
		case "pg":
			if r, err := a.pg().ListPortGroups(a.ctx, &govnv1.ListPortGroupsRequest{}); err == nil {
				for _, x := range r.Items {
					names = append(names, x.Name)
				}
			}
		case "lb":
			if r, err := a.lb().ListLoadBalancers(a.ctx, &govnv1.ListLoadBalancersRequest{}); err == nil {
				for _, x := range r.Items {
					names = append(names, x.Name)
				}
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

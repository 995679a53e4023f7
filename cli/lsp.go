package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	govnv1 "github.com/govn/govn/api/govnv1"
)

func init() { register(newLSPCommand) }

func newLSPCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "lsp", Short: "Logical switch ports: add, del, list, show, set-addresses, set-port-security, set-type, set-options"}
	var mayExist, ifExists bool
	var typ string
	var addrs, portSec, opts []string
	var tag int
	add := &cobra.Command{
		Use: "add SWITCH PORT", Short: "Create a port on a logical switch", Args: cobra.ExactArgs(2),
		ValidArgsFunction: o.completeNames("ls"),
		RunE: o.withAPI(func(a *api, args []string) error {
			options, err := parseKV("--option", opts)
			if err != nil {
				return err
			}
			lsp := &govnv1.LogicalSwitchPort{Switch: args[0], Name: args[1], Type: typ, Addresses: addrs,
				PortSecurity: portSec, Options: options}
			if tag >= 0 {
				lsp.TagRequest = ptrInt32(tag)
			}
			p, err := a.lsp().CreateLogicalSwitchPort(a.ctx, &govnv1.CreateLogicalSwitchPortRequest{MayExist: mayExist, LogicalSwitchPort: lsp})
			if err != nil {
				return a.err(err)
			}
			return a.printCreated(p, p.Uuid)
		}),
	}
	add.Flags().BoolVar(&mayExist, "may-exist", false, "no error if the port already exists on this switch")
	add.Flags().StringVar(&typ, "type", "", "port type (router, localnet, localport, ...)")
	add.Flags().StringArrayVar(&addrs, "address", nil, `an addresses entry, e.g. "00:00:00:00:00:01 10.0.0.11" (repeatable)`)
	add.Flags().StringArrayVar(&portSec, "port-security", nil, "a port_security entry (repeatable)")
	add.Flags().StringArrayVar(&opts, "option", nil, "KEY=VALUE option, e.g. network_name=physnet for a localnet port (repeatable)")
	add.Flags().IntVar(&tag, "tag", -1, "VLAN tag 0..4095 (tag_request; a localnet port's VLAN, or a nested container's tag)")
	del := &cobra.Command{
		Use: "del PORT", Short: "Delete a logical switch port", Args: cobra.ExactArgs(1),
		ValidArgsFunction: o.completeNames("lsp"),
		RunE: o.withAPI(func(a *api, args []string) error {
			r, err := a.lsp().DeleteLogicalSwitchPort(a.ctx, &govnv1.DeleteLogicalSwitchPortRequest{Name: args[0], IfExists: ifExists})
			if err != nil {
				return a.err(err)
			}
			return a.printDeleted(r)
		}),
	}
	del.Flags().BoolVar(&ifExists, "if-exists", false, "no error if the port does not exist")
	list := &cobra.Command{
		Use: "list [SWITCH]", Short: "List logical switch ports (of one switch)", Args: cobra.MaximumNArgs(1),
		ValidArgsFunction: o.completeNames("ls"),
		RunE: o.withAPI(func(a *api, args []string) error {
			req := &govnv1.ListLogicalSwitchPortsRequest{}
			if len(args) == 1 {
				req.Switch = args[0]
			}
			r, err := a.lsp().ListLogicalSwitchPorts(a.ctx, req)
			if err != nil {
				return a.err(err)
			}
			return a.o.print(protoList(r.Items), func(w io.Writer) error {
				var rows [][]string
				for _, p := range r.Items {
					addr := strings.Join(p.Addresses, "; ")
					if p.DynamicAddresses != "" {
						addr += " (dynamic: " + p.DynamicAddresses + ")"
					}
					rows = append(rows, []string{p.Name, p.Switch, dash(p.Type), dash(addr), dash(strings.Join(p.PortSecurity, "; ")), upDown(p.Up)})
				}
				return printTable(w, []string{"name", "switch", "type", "addresses", "port security", "up"}, rows)
			})
		}),
	}
	show := &cobra.Command{
		Use: "show PORT", Short: "Show one logical switch port", Args: cobra.ExactArgs(1),
		ValidArgsFunction: o.completeNames("lsp"),
		RunE: o.withAPI(func(a *api, args []string) error {
			p, err := a.lsp().GetLogicalSwitchPort(a.ctx, &govnv1.GetLogicalSwitchPortRequest{Name: args[0]})
			if err != nil {
				return a.err(err)
			}
			return a.o.print(protoJSON(p), func(w io.Writer) error {
				rows := [][]string{{"name", p.Name}, {"uuid", p.Uuid}, {"switch", p.Switch}, {"type", dash(p.Type)},
					{"addresses", quoteList(p.Addresses)}, {"dynamic addresses", dash(p.DynamicAddresses)},
					{"port security", quoteList(p.PortSecurity)}, {"options", kvString(p.Options)}, {"tag", tagString(p)}, {"up", upDown(p.Up)}}
				return printTable(w, []string{"field", "value"}, rows)
			})
		}),
	}
	setField := func(use, short, field string, build func(p *govnv1.LogicalSwitchPort, vals []string) error) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.MinimumNArgs(1),
			ValidArgsFunction: o.completeNames("lsp"),
			RunE: o.withAPI(func(a *api, args []string) error {
				p := &govnv1.LogicalSwitchPort{Name: args[0]}
				if err := build(p, args[1:]); err != nil {
					return err
				}
				got, err := a.lsp().UpdateLogicalSwitchPort(a.ctx, &govnv1.UpdateLogicalSwitchPortRequest{LogicalSwitchPort: p,
					UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{field}}})
				if err != nil {
					return a.err(err)
				}
				if err := a.afterWrite(); err != nil {
					return err
				}
				if a.o.output == FormatTable {
					return nil
				}
				return a.o.print(protoJSON(got), nil)
			}),
		}
	}
	cmd.AddCommand(add, del, list, show,
		setField("set-addresses PORT [ADDRESS...]", `Set a port's addresses ("MAC IP...", "unknown", "dynamic", "router"); none clears`, "addresses",
			func(p *govnv1.LogicalSwitchPort, v []string) error { p.Addresses = v; return nil }),
		setField("set-port-security PORT [ENTRY...]", `Set a port's port security ("MAC [IP[/LEN]...]"); none clears`, "port_security",
			func(p *govnv1.LogicalSwitchPort, v []string) error { p.PortSecurity = v; return nil }),
		setField("set-type PORT [TYPE]", "Set a port's type (none: a VIF)", "type",
			func(p *govnv1.LogicalSwitchPort, v []string) error {
				if len(v) > 1 {
					return fmt.Errorf("set-type takes one TYPE, got %d", len(v))
				}
				if len(v) == 1 {
					p.Type = v[0]
				}
				return nil
			}),
		setField("set-options PORT [KEY=VALUE...]", "Set a port's options (replaces them all)", "options",
			func(p *govnv1.LogicalSwitchPort, v []string) error {
				m, err := parseKV("option", v)
				p.Options = m
				return err
			}),
	)
	return cmd
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// parseKV parses KEY=VALUE arguments.
func parseKV(what string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want KEY=VALUE", what, kv)
		}
		m[k] = v
	}
	return m, nil
}

func kvString(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + quoteIfNeeded(m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " ,{}=\"") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func ptrInt32(n int) *int32 { v := int32(n); return &v }

// tagString is the port's tag (or requested tag), "-" when none.
func tagString(p *govnv1.LogicalSwitchPort) string {
	switch {
	case p.Tag != nil:
		return fmt.Sprint(*p.Tag)
	case p.TagRequest != nil:
		return fmt.Sprint(*p.TagRequest)
	}
	return "-"
}

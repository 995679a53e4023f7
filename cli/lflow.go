package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/govn/govn/controller"
	"github.com/govn/govn/lflow/action"
	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/expr"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

func init() { register(newLflowCommand) }

// lflowFlags are the inputs of `govnctl lflow compile|check`.
type lflowFlags struct {
	match, actions  string
	pipeline        string
	table, priority int
	datapath        uint32
	ports           []string
	addressSets     []string
	portGroups      []string
	resident        []string
}

func newLflowCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lflow",
		Short: "Work with OVN logical flows offline: check and compile match/action text",
		Long: "govnctl lflow parses logical-flow matches and actions (ovn-sb(5) Logical_Flow syntax) " +
			"the way northd and the controller do. It needs no server.",
	}
	cmd.AddCommand(newLflowCompileCommand(o), newLflowCheckCommand(o))
	return cmd
}

func (f *lflowFlags) addCommon(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.match, "match", "", "logical flow match, e.g. 'ip4 && tcp.dst == 80'")
	cmd.Flags().StringVar(&f.actions, "actions", "", "logical flow actions, e.g. 'next;'")
}

func newLflowCheckCommand(o *options) *cobra.Command {
	f := &lflowFlags{}
	cmd := &cobra.Command{
		Use:   "check --match M [--actions A]",
		Short: "Parse a match (and actions) and print the canonical form, or the error with its position",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validateOutput(); err != nil {
				return err
			}
			if f.match == "" && f.actions == "" {
				return errors.New("give --match, --actions or both")
			}
			res, err := checkLflow(f)
			if err != nil {
				return err
			}
			return o.print(res, func(w io.Writer) error {
				if f.match != "" {
					fmt.Fprintf(w, "match: %s\n", res.Match)
				}
				if f.actions != "" {
					fmt.Fprintf(w, "actions: %s\n", res.Actions)
					if len(res.Prereqs) > 0 {
						fmt.Fprintf(w, "prerequisites: %s\n", strings.Join(res.Prereqs, " && "))
					}
				}
				return nil
			})
		},
	}
	f.addCommon(cmd)
	return cmd
}

// lflowCheckResult is the output of `lflow check`.
type lflowCheckResult struct {
	Match   string   `json:"match,omitempty"`
	Actions string   `json:"actions,omitempty"`
	Prereqs []string `json:"prerequisites,omitempty"`
}

func checkLflow(f *lflowFlags) (*lflowCheckResult, error) {
	st := symtab.Default()
	res := &lflowCheckResult{}
	if f.match != "" {
		e, err := expr.Parse(f.match, st)
		if err != nil {
			return nil, positioned("match", f.match, err)
		}
		res.Match = e.String()
	}
	if f.actions != "" {
		p, err := action.Parse(f.actions, st)
		if err != nil {
			return nil, positioned("actions", f.actions, err)
		}
		res.Actions, res.Prereqs = p.String(), p.Prereqs
	}
	return res, nil
}

func newLflowCompileCommand(o *options) *cobra.Command {
	f := &lflowFlags{}
	cmd := &cobra.Command{
		Use:   "compile --match M --actions A [--port NAME=KEY ...] [--address-set NAME=a,b ...]",
		Short: "Compile one logical flow to OpenFlow flows (ovs-ofctl add-flows syntax)",
		Long: "Compiles one logical flow to the OpenFlow flows govn controller would install on br-int, " +
			"one per line in `ovs-ofctl -O OpenFlow15 add-flows` file syntax. Groups (ct_lb_mark) follow " +
			"as '#'-comment lines in add-group syntax, so the output stays a valid flow file.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validateOutput(); err != nil {
				return err
			}
			if f.match == "" {
				return errors.New("--match is required")
			}
			res, err := compileLflow(f)
			if err != nil {
				return err
			}
			return o.print(res, func(w io.Writer) error {
				for _, l := range res.Flows {
					fmt.Fprintln(w, l)
				}
				for _, g := range res.Groups {
					fmt.Fprintf(w, "# group: %s\n", g)
				}
				return nil
			})
		},
	}
	f.addCommon(cmd)
	cmd.Flags().StringVar(&f.pipeline, "pipeline", "ingress", "logical pipeline: ingress or egress")
	cmd.Flags().IntVar(&f.table, "table", 0, "logical table number (0..32)")
	cmd.Flags().IntVar(&f.priority, "priority", 100, "logical flow priority (0..65535)")
	cmd.Flags().Uint32Var(&f.datapath, "datapath", 0, "datapath tunnel key to match in metadata (0: no metadata match)")
	cmd.Flags().StringArrayVar(&f.ports, "port", nil, "logical port NAME=KEY (repeatable)")
	cmd.Flags().StringArrayVar(&f.addressSets, "address-set", nil, "address set NAME=ADDR,ADDR (repeatable)")
	cmd.Flags().StringArrayVar(&f.portGroups, "port-group", nil, "port group NAME=PORT,PORT (repeatable)")
	cmd.Flags().StringArrayVar(&f.resident, "chassis-resident", nil, "port for which is_chassis_resident() is true (repeatable)")
	return cmd
}

// lflowCompileResult is the output of `lflow compile`.
type lflowCompileResult struct {
	Flows  []string `json:"flows"`
	Groups []string `json:"groups,omitempty"`
}

func compileLflow(f *lflowFlags) (*lflowCompileResult, error) {
	st := symtab.Default()
	if f.actions == "" {
		f.actions = "next;"
	}
	pl := controller.Ingress
	switch f.pipeline {
	case "ingress":
	case "egress":
		pl = controller.Egress
	default:
		return nil, fmt.Errorf("--pipeline %q: want ingress or egress", f.pipeline)
	}
	table, err := controller.LogicalTable(pl, f.table)
	if err != nil {
		return nil, fmt.Errorf("--table: %w", err)
	}
	if f.priority < 0 || f.priority > 65535 {
		return nil, fmt.Errorf("--priority %d: want 0..65535", f.priority)
	}
	ports := map[string]uint32{}
	for _, kv := range f.ports {
		name, v, ok := strings.Cut(kv, "=")
		key, err := strconv.ParseUint(v, 0, 32)
		if !ok || name == "" || err != nil {
			return nil, fmt.Errorf("--port %q: want NAME=KEY with a 32-bit integer key", kv)
		}
		ports[name] = uint32(key)
	}
	sets, err := parseLists("--address-set", f.addressSets)
	if err != nil {
		return nil, err
	}
	groups, err := parseLists("--port-group", f.portGroups)
	if err != nil {
		return nil, err
	}
	resident := map[string]bool{}
	for _, p := range f.resident {
		resident[p] = true
	}

	// Parse each input on its own first so errors point into what the
	// user typed, not into the combined match.
	if _, err := expr.Parse(f.match, st); err != nil {
		return nil, positioned("match", f.match, err)
	}
	parsed, err := action.Parse(f.actions, st)
	if err != nil {
		return nil, positioned("actions", f.actions, err)
	}
	nextGroup := uint32(1)
	params := controller.EncodeParams(pl, f.table)
	params.LookupPort = func(_, name string) (uint32, bool) {
		k, ok := ports[name]
		return k, ok
	}
	params.AllocGroup = func(of.Group) (uint32, error) { nextGroup++; return nextGroup - 1, nil }
	enc, err := action.Encode(parsed.Actions, &params)
	if err != nil {
		return nil, positioned("actions", f.actions, err)
	}
	match := f.match
	for _, p := range parsed.Prereqs {
		match = "(" + match + ") && (" + p + ")"
	}
	opts := &expr.Options{
		Ports:           func(n string) (uint32, bool) { k, ok := ports[n]; return k, ok },
		AddressSets:     func(n string) ([]string, bool) { a, ok := sets[n]; return a, ok },
		PortGroups:      func(n string) ([]string, bool) { p, ok := groups[n]; return p, ok },
		ChassisResident: func(p string) bool { return resident[p] },
		ConjIDBase:      1,
	}
	res, err := expr.NewCompiler(st).CompileString(match, opts)
	if err != nil {
		return nil, positioned("match", f.match, err)
	}
	var base of.Match
	if f.datapath != 0 {
		base.Set(symtab.DatapathField, bits.From64(uint64(f.datapath)), bits.Ones(64))
	}
	out := &lflowCompileResult{Flows: []string{}}
	for _, fl := range res.Flows(table, uint16(f.priority), 0, base, enc.Actions) {
		out.Flows = append(out.Flows, fl.String())
	}
	for _, g := range enc.Groups {
		out.Groups = append(out.Groups, g.String())
	}
	return out, nil
}

// parseLists parses repeated NAME=a,b,c flags.
func parseLists(flag string, vals []string) (map[string][]string, error) {
	m := map[string][]string{}
	for _, kv := range vals {
		name, list, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s %q: want NAME=ITEM,ITEM", flag, kv)
		}
		var items []string
		for _, it := range strings.Split(list, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		sort.Strings(items)
		m[name] = items
	}
	return m, nil
}

// positioned formats a parse error with the input and a caret under the
// column it names, e.g.
//
//	match: 1:9: "tcp.dst" expects a 16-bit integer, got "70000"
//	  tcp.dst == 70000
//	             ^
func positioned(what, input string, err error) error {
	var pos lex.Pos
	var le *lex.Error
	var ee *expr.Error
	switch {
	case errors.As(err, &ee):
		pos = ee.Pos
	case errors.As(err, &le):
		pos = le.Pos
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
	lines := strings.Split(input, "\n")
	if pos.Line < 1 || pos.Line > len(lines) || pos.Col < 1 {
		return fmt.Errorf("%s: %w", what, err)
	}
	line := lines[pos.Line-1]
	caret := strings.Repeat(" ", min(pos.Col-1, len([]rune(line))))
	return fmt.Errorf("%s: %w\n  %s\n  %s^", what, err, line, caret)
}

// Package cli implements govnctl's cobra commands, one group per file, with
// shared output formatting (-o table|json|yaml).
package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes, as documented in govnctl --help.
const (
	ExitOK        = 0
	ExitUserError = 1 // bad flags, bad input, validation failure
	ExitServer    = 2 // server or connection error
)

// serverError marks errors that come from the server or the connection to it.
type serverError struct{ err error }

func (e serverError) Error() string { return e.err.Error() }
func (e serverError) Unwrap() error { return e.err }

// commands are the command groups; each file adds its constructor in init().
var commands []func(*options) *cobra.Command

func register(f func(*options) *cobra.Command) { commands = append(commands, f) }

// options are the flags every command shares.
type options struct {
	output string
	out    io.Writer
	errOut io.Writer
	client clientOptions // --server, TLS, --timeout, --wait (cli/client.go)
}

// NewRootCommand builds govnctl's command tree writing to out and errOut.
func NewRootCommand(out, errOut io.Writer) *cobra.Command {
	o := &options{out: out, errOut: errOut}
	root := &cobra.Command{
		Use:   "govnctl",
		Short: "govnctl: the govn client",
		Long: "govnctl drives govn: logical switches, ports, ACLs, routers, load balancers, NAT, trace.\n\n" +
			"Exit codes: 0 ok, 1 user error, 2 server or connection error.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.PersistentFlags().StringVarP(&o.output, "output", "o", "table", "output format: table, json or yaml")
	o.client.addFlags(root.PersistentFlags())
	for _, f := range commands {
		root.AddCommand(f(o))
	}
	return root
}

// Main runs govnctl with args and returns the process exit code.
func Main(args []string, out, errOut io.Writer) int {
	root := NewRootCommand(out, errOut)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(errOut, "govnctl:", err)
	var se serverError
	if errors.As(err, &se) {
		return ExitServer
	}
	return ExitUserError
}

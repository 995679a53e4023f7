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
	register(newASCommand)
	register(newPGCommand)
}

func newASCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "as", Short: "Address sets: add, del, list, set"}
	var mayExist, ifExists bool
	add := &cobra.Command{
		Use: "add NAME [ADDRESS...]", Short: "Create an address set (IPs or prefixes)", Args: cobra.MinimumNArgs(1),
		RunE: o.withAPI(func(a *api, args []string) error {
			got, err := a.as().CreateAddressSet(a.ctx, &govnv1.CreateAddressSetRequest{MayExist: mayExist,
				AddressSet: &govnv1.AddressSet{Name: args[0], Addresses: args[1:]}})
			if err != nil {
				return a.err(err)
			}
			return a.printCreated(got, got.Uuid)
		}),
	}
	add.Flags().BoolVar(&mayExist, "may-exist", false, "no error if the address set exists")
	set := &cobra.Command{
		Use: "set NAME [ADDRESS...]", Short: "Replace an address set's addresses", Args: cobra.MinimumNArgs(1),
		ValidArgsFunction: o.completeNames("as"),
		RunE: o.withAPI(func(a *api, args []string) error {
			got, err := a.as().UpdateAddressSet(a.ctx, &govnv1.UpdateAddressSetRequest{
				AddressSet: &govnv1.AddressSet{Name: args[0], Addresses: args[1:]}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"addresses"}}})
			if err != nil {
				return a.err(err)
			}
			return a.printUpdated(got)
		}),
	}
	del := &cobra.Command{
		Use: "del NAME", Short: "Delete an address set (refused while an ACL uses it)", Args: cobra.ExactArgs(1),
		ValidArgsFunction: o.completeNames("as"),
		RunE: o.withAPI(func(a *api, args []string) error {
			r, err := a.as().DeleteAddressSet(a.ctx, &govnv1.DeleteAddressSetRequest{Name: args[0], IfExists: ifExists})
			if err != nil {
				return a.err(err)
			}
			return a.printDeleted(r)
		}),
	}
	del.Flags().BoolVar(&ifExists, "if-exists", false, "no error if it does not exist")
	list := &cobra.Command{
		Use: "list", Short: "List address sets", Args: cobra.NoArgs,
		RunE: o.withAPI(func(a *api, _ []string) error {
			r, err := a.as().ListAddressSets(a.ctx, &govnv1.ListAddressSetsRequest{})
			if err != nil {
				return a.err(err)
			}
			return a.o.print(protoList(r.Items), func(w io.Writer) error {
				var rows [][]string
				for _, x := range r.Items {
					rows = append(rows, []string{x.Name, dash(strings.Join(x.Addresses, " "))})
				}
				return printTable(w, []string{"name", "addresses"}, rows)
			})
		}),
	}
	cmd.AddCommand(add, del, list, set)
	return cmd
}

func newPGCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "pg", Short: "Port groups: add, del, list, set-ports"}
	var mayExist, ifExists bool
	add := &cobra.Command{
		Use: "add NAME [PORT...]", Short: "Create a port group of switch ports", Args: cobra.MinimumNArgs(1),
		RunE: o.withAPI(func(a *api, args []string) error {
			got, err := a.pg().CreatePortGroup(a.ctx, &govnv1.CreatePortGroupRequest{MayExist: mayExist,
				PortGroup: &govnv1.PortGroup{Name: args[0], Ports: args[1:]}})
			if err != nil {
				return a.err(err)
			}
			return a.printCreated(got, got.Uuid)
		}),
	}
	add.Flags().BoolVar(&mayExist, "may-exist", false, "no error if the port group exists")
	set := &cobra.Command{
		Use: "set-ports NAME [PORT...]", Short: "Replace a port group's ports", Args: cobra.MinimumNArgs(1),
		ValidArgsFunction: o.completeNames("pg"),
		RunE: o.withAPI(func(a *api, args []string) error {
			got, err := a.pg().UpdatePortGroup(a.ctx, &govnv1.UpdatePortGroupRequest{
				PortGroup: &govnv1.PortGroup{Name: args[0], Ports: args[1:]}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"ports"}}})
			if err != nil {
				return a.err(err)
			}
			return a.printUpdated(got)
		}),
	}
	del := &cobra.Command{
		Use: "del NAME", Short: "Delete a port group and its ACLs (refused while other ACLs use it)", Args: cobra.ExactArgs(1),
		ValidArgsFunction: o.completeNames("pg"),
		RunE: o.withAPI(func(a *api, args []string) error {
			r, err := a.pg().DeletePortGroup(a.ctx, &govnv1.DeletePortGroupRequest{Name: args[0], IfExists: ifExists})
			if err != nil {
				return a.err(err)
			}
			return a.printDeleted(r)
		}),
	}
	del.Flags().BoolVar(&ifExists, "if-exists", false, "no error if it does not exist")
	list := &cobra.Command{
		Use: "list", Short: "List port groups", Args: cobra.NoArgs,
		RunE: o.withAPI(func(a *api, _ []string) error {
			r, err := a.pg().ListPortGroups(a.ctx, &govnv1.ListPortGroupsRequest{})
			if err != nil {
				return a.err(err)
			}
			return a.o.print(protoList(r.Items), func(w io.Writer) error {
				var rows [][]string
				for _, x := range r.Items {
					rows = append(rows, []string{x.Name, dash(strings.Join(x.Ports, " ")), fmt.Sprint(x.AclCount)})
				}
				return printTable(w, []string{"name", "ports", "acls"}, rows)
			})
		}),
	}
	cmd.AddCommand(add, del, list, set)
	return cmd
}

package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	govnv1 "github.com/govn/govn/api/govnv1"
)

func init() {
	register(newSyncCommand)
	register(newWatchCommand)
}

func newSyncCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "sync [--wait=sb|hv]",
		Short: "Wait until northd (sb, the default) or every chassis (hv) has caught up with the northbound DB",
		Args:  cobra.NoArgs,
		RunE: o.withAPI(func(a *api, _ []string) error {
			w := govnv1.SyncRequest_SB
			if o.client.wait == "hv" {
				w = govnv1.SyncRequest_HV
			}
			r, err := a.sync().Sync(a.ctx, &govnv1.SyncRequest{Wait: w, Timeout: durationpb.New(o.client.timeout)})
			if err != nil {
				return a.err(err)
			}
			return o.print(protoJSON(r), func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "nb_cfg %d: sb_cfg %d, hv_cfg %d\n", r.NbCfg, r.SbCfg, r.HvCfg)
				return err
			})
		}),
	}
}

func newWatchCommand(o *options) *cobra.Command {
	var initial bool
	cmd := &cobra.Command{
		Use:   "watch [KIND...]",
		Short: "Stream changes to northbound resources (logical_switch, logical_switch_port, acl, ...) until interrupted",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validateOutput(); err != nil {
				return err
			}
			conn, err := o.client.dial()
			if err != nil {
				return err
			}
			defer conn.Close()
			a := &api{o: o, conn: conn, ctx: cmd.Context(), stop: func() {}}
			stream, err := govnv1.NewWatchServiceClient(conn).Watch(cmd.Context(), &govnv1.WatchRequest{Kinds: args, Initial: initial})
			if err != nil {
				return a.err(err)
			}
			for {
				ev, err := stream.Recv()
				if err != nil {
					if cmd.Context().Err() != nil {
						return nil
					}
					return a.err(err)
				}
				if o.output == FormatTable {
					fmt.Fprintf(o.out, "%-8s %-20s %s\n", ev.Type, ev.Kind, ev.Name)
					continue
				}
				if err := o.print(protoJSON(ev), nil); err != nil {
					return err
				}
			}
		},
	}
	cmd.Flags().BoolVar(&initial, "initial", false, "first list every existing resource as ADDED")
	return cmd
}

package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	govnv1 "github.com/govn/govn/api/govnv1"
)

// DefaultServer is the API address when neither --server nor GOVN_SERVER is set.
const DefaultServer = "127.0.0.1:6690"

// clientOptions are the flags for talking to the govn API.
type clientOptions struct {
	server                 string
	tlsCA, tlsCert, tlsKey string
	tlsServerName          string
	timeout                time.Duration
	wait                   string
}

func (c *clientOptions) addFlags(f *pflag.FlagSet) {
	def := os.Getenv("GOVN_SERVER")
	if def == "" {
		def = DefaultServer
	}
	f.StringVar(&c.server, "server", def, "govn API address HOST:PORT or unix:PATH (env GOVN_SERVER)")
	f.StringVar(&c.tlsCA, "tls-ca", "", "CA certificate to verify the server (enables TLS)")
	f.StringVar(&c.tlsCert, "tls-cert", "", "client certificate for mTLS")
	f.StringVar(&c.tlsKey, "tls-key", "", "client private key for mTLS")
	f.StringVar(&c.tlsServerName, "tls-server-name", "", "server name to verify (default: the host of --server)")
	f.DurationVar(&c.timeout, "timeout", 30*time.Second, "time limit for each request")
	f.StringVar(&c.wait, "wait", "", "after a change, wait until it reached the southbound DB (sb) or every chassis (hv)")
}

// dial connects lazily (grpc.NewClient does no I/O until the first call).
func (c *clientOptions) dial() (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if c.tlsCA != "" || c.tlsCert != "" || c.tlsKey != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.tlsServerName}
		if c.tlsCA != "" {
			pem, err := os.ReadFile(c.tlsCA)
			if err != nil {
				return nil, fmt.Errorf("--tls-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--tls-ca %s: no PEM certificates", c.tlsCA)
			}
			cfg.RootCAs = pool
		}
		if (c.tlsCert == "") != (c.tlsKey == "") {
			return nil, errors.New("--tls-cert and --tls-key go together")
		}
		if c.tlsCert != "" {
			cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
			if err != nil {
				return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		creds = credentials.NewTLS(cfg)
	}
	target := c.server
	if strings.HasPrefix(target, "unix:") {
		target = "unix://" + strings.TrimPrefix(strings.TrimPrefix(target, "unix:"), "//")
	} else {
		target = "passthrough:///" + target
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("--server %q: %w", c.server, err)
	}
	return conn, nil
}

// api is one command's connection and request context.
type api struct {
	o    *options
	conn *grpc.ClientConn
	ctx  context.Context
	stop func()
}

// connect opens the API connection for a command; call a.close when done.
func (o *options) connect(cmd *cobra.Command) (*api, error) {
	switch o.client.wait {
	case "", "sb", "hv":
	default:
		return nil, fmt.Errorf("--wait %q: want sb or hv", o.client.wait)
	}
	if err := o.validateOutput(); err != nil {
		return nil, err
	}
	conn, err := o.client.dial()
	if err != nil {
		return nil, err
	}
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, o.client.timeout)
	return &api{o: o, conn: conn, ctx: ctx, stop: cancel}, nil
}

func (a *api) close() {
	a.stop()
	a.conn.Close()
}

func (a *api) ls() govnv1.LogicalSwitchServiceClient {
	return govnv1.NewLogicalSwitchServiceClient(a.conn)
}
func (a *api) lsp() govnv1.LogicalSwitchPortServiceClient {
	return govnv1.NewLogicalSwitchPortServiceClient(a.conn)
}
func (a *api) acl() govnv1.ACLServiceClient       { return govnv1.NewACLServiceClient(a.conn) }
func (a *api) as() govnv1.AddressSetServiceClient { return govnv1.NewAddressSetServiceClient(a.conn) }
func (a *api) pg() govnv1.PortGroupServiceClient  { return govnv1.NewPortGroupServiceClient(a.conn) }
func (a *api) lr() govnv1.LogicalRouterServiceClient {
	return govnv1.NewLogicalRouterServiceClient(a.conn)
}
func (a *api) lrp() govnv1.LogicalRouterPortServiceClient {
	return govnv1.NewLogicalRouterPortServiceClient(a.conn)
}
func (a *api) route() govnv1.StaticRouteServiceClient {
	return govnv1.NewStaticRouteServiceClient(a.conn)
}
func (a *api) lb() govnv1.LoadBalancerServiceClient {
	return govnv1.NewLoadBalancerServiceClient(a.conn)
}
func (a *api) nat() govnv1.NATServiceClient   { return govnv1.NewNATServiceClient(a.conn) }
func (a *api) sync() govnv1.SyncServiceClient { return govnv1.NewSyncServiceClient(a.conn) }

// err turns an RPC error into govnctl's error: a one-line message, and
// serverError (exit 2) for server and connection failures.
func (a *api) err(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return serverError{err}
	}
	msg := st.Message()
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.FieldViolations) > 0 && !strings.Contains(msg, br.FieldViolations[0].Field) {
			msg += " (field " + br.FieldViolations[0].Field + ")"
		}
	}
	msg = strings.ReplaceAll(msg, "\n", " ")
	switch st.Code() {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition, codes.OutOfRange:
		return errors.New(msg)
	case codes.Unavailable:
		return serverError{fmt.Errorf("cannot reach the govn API at %s: %s", a.o.client.server, msg)}
	case codes.PermissionDenied, codes.Unauthenticated:
		return serverError{fmt.Errorf("the govn API at %s refused us: %s", a.o.client.server, msg)}
	}
	return serverError{fmt.Errorf("%s: %s", st.Code(), msg)}
}

// afterWrite honours --wait after a successful change.
func (a *api) afterWrite() error {
	if a.o.client.wait == "" {
		return nil
	}
	w := govnv1.SyncRequest_SB
	if a.o.client.wait == "hv" {
		w = govnv1.SyncRequest_HV
	}
	_, err := a.sync().Sync(a.ctx, &govnv1.SyncRequest{Wait: w, Timeout: durationpb.New(a.o.client.timeout)})
	return a.err(err)
}

var pj = protojson.MarshalOptions{UseProtoNames: true}

// protoJSON renders a message for -o json|yaml (proto field names).
func protoJSON(m proto.Message) json.RawMessage {
	b, err := pj.Marshal(m)
	if err != nil {
		return json.RawMessage(fmt.Sprintf("{%q:%q}", "error", err.Error()))
	}
	return b
}

// protoList renders messages as one JSON array.
func protoList[T proto.Message](items []T) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(items))
	for _, m := range items {
		out = append(out, protoJSON(m))
	}
	return out
}

// withAPI is a RunE that connects, runs f and closes.
func (o *options) withAPI(f func(a *api, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a, err := o.connect(cmd)
		if err != nil {
			return err
		}
		defer a.close()
		return f(a, args)
	}
}

// printUUID prints a created row: its UUID in table form, the object otherwise.
func (a *api) printCreated(m proto.Message, uuid string) error {
	if err := a.afterWrite(); err != nil {
		return err
	}
	return a.o.print(protoJSON(m), func(w io.Writer) error { _, err := fmt.Fprintln(w, uuid); return err })
}

// printDeleted prints how many rows a delete removed (json/yaml only).
func (a *api) printDeleted(r *govnv1.DeleteResponse) error {
	if err := a.afterWrite(); err != nil {
		return err
	}
	if a.o.output == FormatTable {
		return nil
	}
	return a.o.print(protoJSON(r), nil)
}

func sortStrings(s []string) { slices.Sort(s) }

// printUpdated prints an updated object (json/yaml only; table is silent).
func (a *api) printUpdated(m proto.Message) error {
	if err := a.afterWrite(); err != nil {
		return err
	}
	if a.o.output == FormatTable {
		return nil
	}
	return a.o.print(protoJSON(m), nil)
}

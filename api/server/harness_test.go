package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/server"
	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/nbdb"
)

var nbDatabase = dbserver.Database{Name: nbdb.DatabaseName, Schema: nbdb.SchemaJSON, Base: "ovnnb_db", GlobalTable: "NB_Global"}

// env is a real NB ovsdb-server with a govn API server in front of it.
type env struct {
	t    testing.TB
	db   *dbserver.Server
	api  *server.Running
	conn *grpc.ClientConn

	ls  govnv1.LogicalSwitchServiceClient
	lsp govnv1.LogicalSwitchPortServiceClient
	acl govnv1.ACLServiceClient
	as  govnv1.AddressSetServiceClient
	pg  govnv1.PortGroupServiceClient
	lb  govnv1.LoadBalancerServiceClient
	ctx context.Context
}

func newEnv(t testing.TB) *env {
	t.Helper()
	db := dbservertest.Start(t, nbDatabase, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	api, err := server.Start(ctx, server.Config{NB: []string{db.Endpoint()}, Listen: "127.0.0.1:0", Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Stop)
	conn, err := grpc.NewClient(api.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &env{t: t, db: db, api: api, conn: conn, ctx: ctx,
		ls: govnv1.NewLogicalSwitchServiceClient(conn), lsp: govnv1.NewLogicalSwitchPortServiceClient(conn),
		acl: govnv1.NewACLServiceClient(conn), as: govnv1.NewAddressSetServiceClient(conn),
		pg: govnv1.NewPortGroupServiceClient(conn), lb: govnv1.NewLoadBalancerServiceClient(conn)}
}

// secondServer starts another API server on the same NB database (stopped
// with the test) and returns a client connection to it.
func (e *env) secondServer() *grpc.ClientConn {
	e.t.Helper()
	api2, err := server.Start(e.ctx, server.Config{NB: []string{e.db.Endpoint()}, Listen: "127.0.0.1:0", Logger: zaptest.NewLogger(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(api2.Stop)
	conn, err := grpc.NewClient(api2.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

// dump is the whole NB database as ovsdb-client prints it, without the
// NB_Global row (whose cfg columns other components may bump).
func (e *env) dump() string {
	e.t.Helper()
	out := dbservertest.Run(e.t, "ovsdb-client", "dump", e.db.Endpoint(), nbdb.DatabaseName)
	return out
}

// expectNothingWritten runs f, which must fail with code, and checks that
// the database is byte-for-byte unchanged. It returns the error.
func (e *env) expectNothingWritten(code codes.Code, f func() error) error {
	e.t.Helper()
	before := e.dump()
	err := f()
	if status.Code(err) != code {
		e.t.Fatalf("got %v (%v), want code %v", status.Code(err), err, code)
	}
	if after := e.dump(); after != before {
		e.t.Fatalf("failed request changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	return err
}

// badRequestField returns the field of the first BadRequest violation in err.
func badRequestField(err error) (field, desc string) {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.FieldViolations) > 0 {
			return br.FieldViolations[0].Field, br.FieldViolations[0].Description
		}
	}
	return "", ""
}

// must returns v or panics (failing the test; cleanups still run).
func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unexpected error: %v", err))
	}
	return v
}

func nbctl(t testing.TB, e *env, args ...string) string {
	t.Helper()
	if _, err := dbservertest.RunErr("ovn-nbctl", "--version"); err != nil {
		t.Skipf("ovn-nbctl not installed: %v", err)
	}
	return dbservertest.Run(t, "ovn-nbctl", append([]string{"--db=" + e.db.Endpoint()}, args...)...)
}

func contains(t testing.TB, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

var _ = errors.New

func maskOf(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

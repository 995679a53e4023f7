package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/server"
	"github.com/govn/govn/api/testcerts"
	"github.com/govn/govn/internal/dbserver/dbservertest"
)

func tlsConn(t *testing.T, addr string, f testcerts.Files, cert, key string) *grpc.ClientConn {
	t.Helper()
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestMTLSHealthMetrics serves with mTLS and metrics on, and checks that a
// client with a certificate from our CA is served, clients without one or
// with another CA's are refused, health reports SERVING, and the Prometheus
// endpoint counts requests by method and code.
func TestMTLSHealthMetrics(t *testing.T) {
	db := dbservertest.Start(t, nbDatabase, "", nil)
	f := testcerts.Write(t, t.TempDir())
	api, err := server.Start(t.Context(), server.Config{NB: []string{db.Endpoint()}, Listen: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0",
		TLSCert: f.ServerCert, TLSKey: f.ServerKey, TLSCA: f.CA, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Stop)
	ctx := t.Context()

	good := tlsConn(t, api.Addr(), f, f.ClientCert, f.ClientKey)
	if _, err := govnv1.NewLogicalSwitchServiceClient(good).CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0"}}); err != nil {
		t.Fatalf("mTLS client: %v", err)
	}
	_, err = govnv1.NewLogicalSwitchServiceClient(good).CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0"}})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("duplicate: %v", err)
	}
	h, err := healthpb.NewHealthClient(good).Check(ctx, &healthpb.HealthCheckRequest{Service: "govn.v1"})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	for name, c := range map[string]*grpc.ClientConn{
		"no client certificate":       tlsConn(t, api.Addr(), f, "", ""),
		"certificate from another CA": tlsConn(t, api.Addr(), f, f.OtherClientCert, f.OtherClientKey),
	} {
		_, err := govnv1.NewLogicalSwitchServiceClient(c).ListLogicalSwitches(ctx, &govnv1.ListLogicalSwitchesRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s: got %v, want Unavailable (handshake refused)", name, err)
		}
	}

	resp, err := http.Get("http://" + api.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`govn_api_requests_total{code="OK",method="/govn.v1.LogicalSwitchService/CreateLogicalSwitch"} 1`,
		`govn_api_requests_total{code="AlreadyExists",method="/govn.v1.LogicalSwitchService/CreateLogicalSwitch"} 1`,
		`govn_api_request_duration_seconds_count{method="/govn.v1.LogicalSwitchService/CreateLogicalSwitch"} 2`,
		"govn_api_nb_connected 1",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestTLSConfigErrors(t *testing.T) {
	f := testcerts.Write(t, t.TempDir())
	for _, c := range []struct{ cert, key, ca, want string }{
		{"", "", f.CA, "--tls-ca needs --tls-cert and --tls-key"},
		{f.ServerCert, "", "", "go together"},
		{f.ServerCert, f.ClientKey, "", "load TLS certificate"},
		{f.ServerCert, f.ServerKey, f.ServerKey, "no PEM certificates"},
	} {
		if _, err := server.TLSConfig(c.cert, c.key, c.ca); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("TLSConfig(%q, %q, %q) = %v, want %q", c.cert, c.key, c.ca, err, c.want)
		}
	}
}

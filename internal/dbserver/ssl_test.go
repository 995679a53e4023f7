package dbserver_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
)

// writeCert writes a PEM certificate (signed by parent/parentKey, or
// self-signed if parent is nil) and its key; it returns both.
func writeCert(t *testing.T, dir, name string, isCA bool, parent *x509.Certificate, parentKey *rsa.PrivateKey) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  isCA,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+"-cert.pem", "CERTIFICATE", der)
	write(name+"-key.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	return cert, key
}

// TestSSLRemoteAndSetConnection: a pssl: remote serves ovn-nbctl over SSL, and
// `ovn-nbctl set-connection` adds a listener through NB_Global.connections.
func TestSSLRemoteAndSetConnection(t *testing.T) {
	dbservertest.RequireOVS(t)
	pki := t.TempDir()
	ca, caKey := writeCert(t, pki, "ca", true, nil, nil)
	writeCert(t, pki, "server", false, ca, caKey)
	writeCert(t, pki, "client", false, ca, caKey)
	port := dbservertest.FreePort(t)
	s := dbservertest.Start(t, nbDatabase, "", func(c *dbserver.Config) {
		c.Remotes = []string{fmt.Sprintf("pssl:%d:127.0.0.1", port)}
		c.SSLPrivateKey = filepath.Join(pki, "server-key.pem")
		c.SSLCertificate = filepath.Join(pki, "server-cert.pem")
		c.SSLCACert = filepath.Join(pki, "ca-cert.pem")
	})
	dbservertest.Run(t, "ovn-nbctl", "--db="+s.Endpoint(), "ls-add", "over-unix")
	ssl := []string{fmt.Sprintf("--db=ssl:127.0.0.1:%d", port), "-p", filepath.Join(pki, "client-key.pem"),
		"-c", filepath.Join(pki, "client-cert.pem"), "-C", filepath.Join(pki, "ca-cert.pem"), "--timeout=10"}
	dbservertest.Run(t, "ovn-nbctl", append(ssl, "ls-add", "over-ssl")...)
	out := dbservertest.Run(t, "ovn-nbctl", append(ssl, "ls-list")...)
	if !strings.Contains(out, "(over-unix)") || !strings.Contains(out, "(over-ssl)") {
		t.Errorf("ls-list over SSL: %q", out)
	}

	tcpPort := dbservertest.FreePort(t)
	dbservertest.Run(t, "ovn-nbctl", "--db="+s.Endpoint(), "set-connection", fmt.Sprintf("ptcp:%d:127.0.0.1", tcpPort))
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := dbservertest.RunErr("ovn-nbctl", fmt.Sprintf("--db=tcp:127.0.0.1:%d", tcpPort), "--timeout=2", "ls-list")
		if err == nil && strings.Contains(out, "(over-ssl)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("set-connection listener not serving: %v %q", err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

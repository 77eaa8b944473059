package replication

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
)

// testPKI is a CA with certificates it signed.
type testPKI struct {
	ca    *x509.Certificate
	key   *ecdsa.PrivateKey
	pool  *x509.CertPool
	nextN int64
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "regionfs test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{ca: ca, key: key, pool: pool, nextN: 2}
}

func (p *testPKI) cert(t *testing.T, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.nextN++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.nextN), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Replication between regions over mutual TLS; a peer without a
// certificate signed by the CA is refused.
func TestMutualTLS(t *testing.T) {
	ctx := context.Background()
	pki := newPKI(t)
	server := func(name string) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{pki.cert(t, name)}, ClientCAs: pki.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	}
	clientCfg := &tls.Config{Certificates: []tls.Certificate{pki.cert(t, "us-east-1 client")}, RootCAs: pki.pool, MinVersion: tls.VersionTLS12}
	a := newRegion(t, "us-east-1", func(o *Options) { o.ServerTLS = server("us-east-1") })
	b := newRegion(t, "us-west-2", func(o *Options) { o.ServerTLS = server("us-west-2") })
	a.startNode(map[string]Peer{b.name: {URL: "https://" + b.addr, Secret: testSecret, TLS: clientCfg}})
	b.startNode(map[string]Peer{a.name: {URL: "https://" + a.addr, Secret: testSecret, TLS: clientCfg}})
	src := a.mkfs("fs-src")
	newWorkload(t, 71, func() *engine.FS { return src }).run(ctx, 40)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	// A peer that has the secret but no certificate gets no further.
	intruder := New(Options{Region: a.name, Engine: a.e, Peers: map[string]Peer{
		b.name: {URL: "https://" + b.addr, Secret: testSecret, TLS: &tls.Config{RootCAs: pki.pool}}}})
	defer intruder.Close()
	if err := intruder.Call(ctx, b.name, "ping", nil, nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("a peer without a client certificate: %v", err)
	}
}

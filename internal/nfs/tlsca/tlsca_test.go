package tlsca

import (
	"crypto/x509"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenReusesAndVerifies(t *testing.T) {
	dir := t.TempDir()
	ca, err := Open(dir, "regionfs us-east-1 NFS CA")
	if err != nil {
		t.Fatal(err)
	}
	again, err := Open(dir, "ignored")
	if err != nil {
		t.Fatal(err)
	}
	if string(again.CertPEM()) != string(ca.CertPEM()) {
		t.Fatal("second Open made a new CA")
	}
	if st, err := os.Stat(filepath.Join(dir, KeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	c, err := again.Issue(Request{CommonName: "fsmt-1", DNSNames: []string{"fs-1.efs.us-east-1.amazonaws.com"}, IPs: []netip.Addr{netip.MustParseAddr("127.1.1.4")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"127.1.1.4", "fs-1.efs.us-east-1.amazonaws.com"} {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: name}); err != nil {
			t.Errorf("verify as %s: %v", name, err)
		}
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "127.1.1.5"}); err == nil {
		t.Error("certificate verified for an address it does not name")
	}
	other, _, err := New("other")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: other.Pool(), DNSName: "127.1.1.4"}); err == nil {
		t.Error("certificate verified under another CA")
	}
	cl, err := ca.Issue(Request{CommonName: "client", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
}

func TestOpenRefusesDamaged(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, CertFile), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, "x"); err == nil {
		t.Fatal("a CA directory with only a damaged certificate was accepted")
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, "x"); err == nil {
		t.Fatal("damaged CA files were accepted")
	}
}

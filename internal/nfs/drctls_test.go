package nfs

import (
	"crypto/tls"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// TestDRCKeepsTLSApart: the duplicate request cache, keyed by the
// client's address, does not answer a plain-text call with the reply of
// a call made over TLS: a CREATE made over TLS in an export that requires
// TLS, sent again in plain text with the same XID and arguments, is
// refused like any plain-text call there (the cached reply, its handle
// and attributes, skipped the export's check).
func TestDRCKeepsTLSApart(t *testing.T) {
	v, ca := tlsEnv(t, tls.NoClientCert, true)
	ctx := t.Context()
	c, err := client.DialTLS(ctx, v.addr, &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cred := client.Unix("h", 0, 0)
	root, _, err := c.WithAuth(cred).Mount(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	args := proto.Marshal(nil, &proto.CreateArgs{Where: proto.DirOp{Dir: root, Name: "made-over-tls"}, Mode: proto.Unchecked})
	const xid = 0x5eed
	h := rpc.CallHeader{XID: xid, Prog: proto.ProgNFS, Vers: proto.VersNFS, Proc: proto.ProcCreate, Cred: cred}
	res, err := c.CallRaw(ctx, h, args)
	if err != nil {
		t.Fatal(err)
	}
	var cr proto.CreateRes
	cr.Decode(xdr.NewDecoder(res))
	if cr.Status != proto.OK {
		t.Fatalf("CREATE over TLS: %v", cr.Status)
	}
	r := v.rawDial(t)
	r.send(rawCall(xid, proto.ProgNFS, proto.VersNFS, proto.ProcCreate, cred, &proto.CreateArgs{Where: proto.DirOp{Dir: root, Name: "made-over-tls"}, Mode: proto.Unchecked}))
	rep := r.reply()
	_, body, err := rpc.ParseReply(rep)
	if err != nil {
		t.Fatal(err)
	}
	var pr proto.CreateRes
	pr.Decode(xdr.NewDecoder(body))
	if pr.Status != proto.ErrAcces {
		t.Fatalf("the same CREATE in plain text: %v (handle %x), want NFS3ERR_ACCES", pr.Status, pr.FH)
	}
}

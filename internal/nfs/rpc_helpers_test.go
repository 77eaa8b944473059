package nfs

import (
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

func rpcHeader(prog, vers, proc uint32) rpc.CallHeader {
	return rpc.CallHeader{Prog: prog, Vers: vers, Proc: proc, Cred: client.Unix("t", 0, 0)}
}

func wantReplyError(t *testing.T, err error, want string) {
	t.Helper()
	re, ok := err.(*rpc.ReplyError)
	if !ok {
		t.Fatalf("error %v (%T), want an RPC %s", err, err, want)
	}
	if !strings.Contains(re.Error(), want) {
		t.Fatalf("error %v, want %s", re, want)
	}
}

func rpcParse(rec []byte) (uint32, []byte, error) { return rpc.ParseReply(rec) }

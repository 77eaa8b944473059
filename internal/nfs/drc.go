package nfs

import (
	"container/list"
	"context"
	"hash/crc32"
	"net/netip"
	"sync"

	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

// drc is the duplicate request cache of non-idempotent procedures. A
// client that loses a reply (a connection reset, a timeout) retransmits
// the call with the same XID, often on a new connection; executing it
// again would answer a spurious NFS3ERR_EXIST or NFS3ERR_NOENT (or repeat
// a RENAME). The cache keys calls by client address (not port: the
// retransmission may come from a new connection) and whether it came
// over TLS, the credential, XID, program, version, procedure and a
// checksum of the arguments, and keeps the reply of the last entries. A
// retransmission of a call still running waits for it and gets its
// reply.
type drc struct {
	mu    sync.Mutex // guards the fields below
	max   int
	items map[drcKey]*list.Element
	lru   list.List // of *drcEntry, most recent at the front
}

type drcKey struct {
	addr netip.Addr
	// tls: the call came over TLS. A plain-text retransmission of a call
	// made over TLS is not answered from the cache: it runs, and an
	// export that requires TLS refuses it.
	tls bool
	// flavor and cred: the credential's flavor and a checksum of its
	// body, so that a call of another user (another process behind the
	// address, a NAT) with the same XID and arguments runs, with its own
	// permission checks, instead of getting the first caller's reply.
	flavor, cred     uint32
	xid              uint32
	prog, vers, proc uint32
	sum              uint32
	argLen           int
}

type drcEntry struct {
	key   drcKey
	done  chan struct{} // closed when reply is set
	reply []byte
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newDRC(max int) *drc {
	return &drc{max: max, items: map[drcKey]*list.Element{}}
}

// drcSumEdge is how much of each end of the arguments the key's checksum
// covers. A WRITE's arguments are its handle, offset and counts and then
// up to a MiB of data: checksumming all of it cost a tenth of a 1 MiB
// WRITE's CPU on the server. Together with the client address, XID,
// procedure and length, the handle and offset at the start and the data
// at both ends tell a retransmission from another call (Linux's nfsd
// checksums the first 256 bytes).
const drcSumEdge = 512

func drcKeyOf(addr netip.Addr, tls bool, h *rpc.CallHeader, args []byte) drcKey {
	var sum uint32
	if len(args) > 2*drcSumEdge {
		sum = crc32.Update(crc32.Checksum(args[:drcSumEdge], castagnoli), castagnoli, args[len(args)-drcSumEdge:])
	} else {
		sum = crc32.Checksum(args, castagnoli)
	}
	return drcKey{
		addr: addr.Unmap(), tls: tls, flavor: h.Cred.Flavor, cred: credSum(&h.Cred),
		xid: h.XID, prog: h.Prog, vers: h.Vers, proc: h.Proc, sum: sum, argLen: len(args),
	}
}

// credSum is a checksum of who a credential's body names, less an
// AUTH_UNIX credential's stamp (RFC 5531: an arbitrary id the caller may
// generate; a retransmission is the same caller whatever its stamp).
func credSum(a *rpc.OpaqueAuth) uint32 {
	body := a.Body
	if a.Flavor == rpc.AuthUnix && len(body) >= 4 {
		body = body[4:]
	}
	return crc32.Checksum(body, castagnoli)
}

// begin registers a call. It returns a new entry for the caller to run
// and finish, or (nil, reply) for a retransmission: the reply of the
// original call (nil if the original is abandoned or ctx ends first).
func (c *drc) begin(ctx context.Context, k drcKey) (*drcEntry, []byte) {
	c.mu.Lock()
	if el, ok := c.items[k]; ok {
		c.lru.MoveToFront(el)
		ent := el.Value.(*drcEntry)
		c.mu.Unlock()
		select {
		case <-ent.done:
			return nil, ent.reply
		case <-ctx.Done():
			return nil, nil
		}
	}
	ent := &drcEntry{key: k, done: make(chan struct{})}
	c.items[k] = c.lru.PushFront(ent)
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		oe := old.Value.(*drcEntry)
		select {
		case <-oe.done:
		default:
			// Still running: keep it (the cache may exceed max by the
			// number of calls in flight).
			c.lru.MoveToFront(old)
			c.mu.Unlock()
			return ent, nil
		}
		c.lru.Remove(old)
		delete(c.items, oe.key)
	}
	c.mu.Unlock()
	return ent, nil
}

// finish stores the reply of a call begun with begin.
func (c *drc) finish(ent *drcEntry, reply []byte) {
	ent.reply = append([]byte(nil), reply...)
	close(ent.done)
}

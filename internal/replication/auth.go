package replication

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Peer authentication. Two regions share a secret. A stream's opening
// request carries the source region, a fresh client nonce, the time and
// an HMAC over them; the reply carries a server nonce and an HMAC over both
// nonces; both sides then key every frame's MAC (keyed BLAKE3) with
// HMAC(secret, nonces), so a
// recorded stream cannot be replayed into a new one. Unary calls carry an
// HMAC over method, path, time, nonce and the body's hash; nonces are
// remembered for the skew window, so a recorded call cannot be replayed.

const (
	hdrRegion = "X-Regionfs-Region"
	hdrNonce  = "X-Regionfs-Nonce"
	hdrTime   = "X-Regionfs-Time"
	hdrAuth   = "X-Regionfs-Auth"
	hdrWire   = "X-Regionfs-Wire"
	// hdrFeatures, in a destination's answer to a stream, lists what it
	// accepts beyond wire version 1 (comma-separated), so that regions
	// upgrade one at a time. It is not signed: taking a feature away only
	// makes the source send what every destination accepts, and adding one
	// only makes an old destination end the stream (which whoever can
	// change the answer can do anyway). A source's stream request lists
	// what it asks for in the same header, equally unsigned: taken away,
	// the destination answers as an older one would (and the source falls
	// back to what it does for those), added, an old source refuses the
	// acks and the stream ends.
	hdrFeatures = "X-Regionfs-Features"
	// featureBlockSums: the destination accepts msgBlocksSum frames.
	featureBlockSums = "block-sums"
	// featureChunkSums: the destination accepts msgChunkSum frames; it
	// announces it only when the stream's channel is authenticated
	// (channelAuthenticated), and refuses the frames otherwise: a chunk's
	// pairs are then outside the MAC, checked by a CRC-32C only. Added,
	// the source sends frames the destination ends the stream on.
	featureChunkSums = "chunk-sums"
	// featureLeaseEcho, in a source's stream request, asks the destination
	// to put in each ack the source's time of the newest message it had
	// received (ack.Echo); in the answer, it says the acks carry it. The
	// source's lease runs from that time: a destination that does not
	// answer with it renews the lease only from the source time its acks
	// say it has durably applied up to (ack.Synced).
	featureLeaseEcho = "lease-echo"
	// featureDurableTimes: the destination takes records frames that end
	// in each record's durable time at the source (recordsMsg), and counts
	// its apply lag from it. Added, an old destination ends the stream on
	// the frames' trailing bytes.
	featureDurableTimes = "durable-times"
	// featureBlockAsks, in a source's stream request, says it takes an
	// ack that asks for blocks without a rewind (ack.Missing with Rewind
	// unset): it pushes them and goes on from where it was. In the
	// answer, it says the destination asks so for the blocks its records
	// lack: it keeps the records it could not apply until the blocks are
	// stored, instead of dropping them and having the source send every
	// record from its applied point again. Without it (either side older)
	// every ask is a rewind, as before.
	featureBlockAsks = "block-asks"
	// featureWaitReason, in a source's stream request, asks the
	// destination to say in its acks why it is not applying what it
	// receives (ack.Waiting: its data disk is full), which the source
	// shows in its status instead of a lost connection; in the answer, it
	// says the acks carry it. An older source refuses the bytes it adds.
	featureWaitReason = "wait-reason"
	// hdrStoreFormat, in a destination's answer to a stream, is its
	// store's format (engine.FormatVersion): a source refuses to ship to
	// a destination of a format older than engine.ReplicaFormat, which
	// could not read what it ships. Absent (a release from before it),
	// the destination is older. Unsigned like hdrFeatures: changed, it
	// can only stop the stream, which whoever changes it can do anyway.
	hdrStoreFormat = "X-Regionfs-Store-Format"
	// upgradeProto is what a source asks a stream's HTTP/1.1 connection to
	// switch to (GET /replication/v1/stream, Connection: Upgrade): after
	// the 101 answer the connection carries the frames both ways as a
	// plain byte stream (TLS records over TLS), without HTTP/2's DATA
	// frames, flow control and the copies through its buffers. Frames are
	// authenticated as over HTTP/2; the request and its answer are signed
	// the same way.
	upgradeProto = "regionfs-stream/1"

	authSkew = 5 * time.Minute
)

// ErrAuth is a peer that could not prove it holds the pair's secret.
var ErrAuth = errors.New("replication: peer authentication failed")

func newNonce() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func sign(secret []byte, parts ...string) string {
	h := hmac.New(sha256.New, secret)
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sessionKey(secret []byte, clientNonce, serverNonce string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("regionfs replication session\x00" + clientNonce + "\x00" + serverNonce))
	return h.Sum(nil)
}

func bodyHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// signRequest authenticates an outgoing request from region.
func signRequest(r *http.Request, secret []byte, region string, now time.Time, body []byte) string {
	nonce := newNonce()
	ts := strconv.FormatInt(now.Unix(), 10)
	r.Header.Set(hdrRegion, region)
	r.Header.Set(hdrNonce, nonce)
	r.Header.Set(hdrTime, ts)
	r.Header.Set(hdrWire, strconv.Itoa(WireVersion))
	r.Header.Set(hdrAuth, sign(secret, "request", r.Method, r.URL.EscapedPath(), r.URL.RawQuery, region, nonce, ts, bodyHash(body)))
	return nonce
}

// nonceCache remembers the nonces of requests seen within the skew window.
type nonceCache struct {
	mu   sync.Mutex // guards seen
	seen map[string]time.Time
}

func (c *nonceCache) fresh(nonce string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	if len(c.seen) > 4096 {
		for n, t := range c.seen {
			if now.Sub(t) > 2*authSkew {
				delete(c.seen, n)
			}
		}
	}
	if _, ok := c.seen[nonce]; ok {
		return false
	}
	c.seen[nonce] = now
	return true
}

// verifyRequest checks an incoming request's authentication and returns
// the calling region and its nonce.
func (n *Node) verifyRequest(r *http.Request, body []byte) (region, nonce string, err error) {
	region = r.Header.Get(hdrRegion)
	nonce = r.Header.Get(hdrNonce)
	ts := r.Header.Get(hdrTime)
	peer, ok := n.peers[region]
	if !ok || len(peer.Secret) == 0 {
		return "", "", fmt.Errorf("%w: unknown region %q", ErrAuth, region)
	}
	if v := r.Header.Get(hdrWire); v != strconv.Itoa(WireVersion) {
		return "", "", fmt.Errorf("replication: peer %s speaks wire version %q, this server %d", region, v, WireVersion)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(nonce) < 16 {
		return "", "", fmt.Errorf("%w: missing time or nonce", ErrAuth)
	}
	now := n.now()
	if d := now.Sub(time.Unix(sec, 0)); d > authSkew || d < -authSkew {
		return "", "", fmt.Errorf("%w: clock skew %s", ErrAuth, d.Round(time.Second))
	}
	want := sign(peer.Secret, "request", r.Method, r.URL.EscapedPath(), r.URL.RawQuery, region, nonce, ts, bodyHash(body))
	if !hmac.Equal([]byte(want), []byte(r.Header.Get(hdrAuth))) {
		return "", "", fmt.Errorf("%w: bad signature from %q", ErrAuth, region)
	}
	if !n.nonces.fresh(nonce, now) {
		return "", "", fmt.Errorf("%w: replayed request from %q", ErrAuth, region)
	}
	return region, nonce, nil
}

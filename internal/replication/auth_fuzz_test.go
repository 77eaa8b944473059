package replication

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
	"time"
)

// FuzzVerifyRequest: a request signed by a peer with the pair's secret
// within the allowed skew is accepted once (its nonce then refused as a
// replay); a request whose signed parts (region, nonce, time, wire
// version, method, path, query, body) were changed after signing, or that
// was signed with another secret, is refused; nothing panics.
func FuzzVerifyRequest(f *testing.F) {
	f.Add("POST", "/replication/v1/call/delete", "", []byte(`{"id":"r1"}`), int32(0), byte(0), "")
	f.Add("GET", "/replication/v1/stream", "id=rc-1", []byte(nil), int32(-300), byte(0), "")
	f.Add("POST", "/replication/v1/stream", "id=rc-1", []byte(nil), int32(301), byte(0), "")
	f.Add("POST", "/replication/v1/call/ping", "", []byte(`{}`), int32(3), byte(1), "eu-west-1")
	f.Add("POST", "/replication/v1/call/ping", "", []byte(`{}`), int32(3), byte(2), "AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("POST", "/replication/v1/call/ping", "", []byte(`{}`), int32(3), byte(3), "99999999999999999999")
	f.Add("POST", "/replication/v1/call/ping", "", []byte(`{}`), int32(3), byte(4), "00")
	f.Add("POST", "/replication/v1/call/ping", "", []byte(`{}`), int32(3), byte(5), "2")
	f.Add("POST", "/replication/v1/call/ping", "", []byte(`{}`), int32(3), byte(6), "x")
	f.Add("POST", "/replication/v1/call/ping", "", []byte(`{}`), int32(3), byte(7), "other secret")
	f.Add("POST", "/replication/v1/call/ping", "a=b", []byte(`{}`), int32(3), byte(8), "a=c")
	f.Add("POST", "/replication/v1/call/ping", "", []byte(`{}`), int32(3), byte(9), "/replication/v1/call/delete")
	f.Add("POST", "/replication/v1/call/ping", "", []byte(`{}`), int32(3), byte(10), "GET")
	const from, secretText = "us-east-1", "replication fuzz secret 0123456789"
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte, skew int32, mutate byte, value string) {
		n := New(Options{Region: "us-west-2", Clock: func() time.Time { return now },
			Peers: map[string]Peer{from: {URL: "http://127.0.0.1:1", Secret: []byte(secretText)}, "nosecret": {URL: "http://127.0.0.1:2"}}})
		r, err := http.NewRequest(method, "http://127.0.0.1:1/", nil)
		if err != nil {
			return
		}
		r.URL.Path, r.URL.RawQuery = path, query
		secret := []byte(secretText)
		if mutate%11 == 7 {
			secret = []byte(value)
		}
		signRequest(r, secret, from, time.Unix(now.Unix()+int64(skew), 0), body)
		signed := r.Header.Clone()
		changed := false
		set := func(h string) {
			changed = r.Header.Get(h) != value
			r.Header.Set(h, value)
		}
		switch mutate % 11 {
		case 1:
			set(hdrRegion)
		case 2:
			set(hdrNonce)
		case 3:
			set(hdrTime)
		case 4:
			set(hdrAuth)
		case 5:
			set(hdrWire)
		case 6:
			changed = value != ""
			body = append(bytes.Clone(body), value...)
		case 7:
			changed = value != secretText
		case 8:
			changed = r.URL.RawQuery != value
			r.URL.RawQuery = value
		case 9:
			old := r.URL.EscapedPath()
			r.URL.Path, r.URL.RawPath = value, ""
			changed = r.URL.EscapedPath() != old
		case 10:
			changed = r.Method != value
			r.Method = value
		}
		region, nonce, err := n.verifyRequest(r, body)
		inSkew := skew >= -int32(authSkew/time.Second) && skew <= int32(authSkew/time.Second)
		switch {
		case err == nil && (changed || !inSkew):
			t.Fatalf("accepted a request changed after signing (mutation %d to %q, skew %ds); signed headers %v, now %v",
				mutate%11, value, skew, signed, r.Header)
		case err != nil && !changed && inSkew:
			t.Fatalf("refused a request signed with the secret (skew %ds): %v", skew, err)
		case err != nil:
			return
		}
		if region != from || nonce != signed.Get(hdrNonce) {
			t.Fatalf("accepted as from %q with nonce %q, signed by %q with %q", region, nonce, from, signed.Get(hdrNonce))
		}
		if _, _, err := n.verifyRequest(r, body); !errors.Is(err, ErrAuth) {
			t.Fatalf("a replayed request was not refused: %v", err)
		}
	})
}

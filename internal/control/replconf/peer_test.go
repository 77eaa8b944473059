package replconf

import (
	"errors"
	"fmt"
	"testing"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/replication"
)

// TestPeerRefusalsRoundTrip: every refusal a region sends the other comes
// back as the same kind of error (so the client gets its AWS answer, not
// an internal error), and other failures stay internal without their text.
func TestPeerRefusalsRoundTrip(t *testing.T) {
	codes := map[string]bool{}
	for _, c := range peerCodes {
		if codes[c.code] {
			t.Fatalf("code %s names two kinds", c.code)
		}
		codes[c.code] = true
		for _, err := range []error{
			control.Errorf(c.kind, "public words"),
			fmt.Errorf("engine: open fs-1: %w", c.kind),
		} {
			sent := toPeer(err)
			var ce *replication.CallError
			if !errors.As(sent, &ce) || ce.Code != c.code || ce.Status != c.status {
				t.Fatalf("%v sent as %#v, want code %s", err, sent, c.code)
			}
			back := fromPeer(sent)
			if !errors.Is(back, c.kind) {
				t.Fatalf("%v came back as %v, not %v", err, back, c.kind)
			}
		}
	}
	if !codes["KMSKeyUnavailable"] {
		t.Fatal("a destination's unusable key has no code")
	}
	internal := errors.New("dial tcp 10.0.0.1:7443: connection refused")
	if sent := toPeer(internal); sent != internal {
		t.Fatalf("an internal failure became %v", sent)
	}
	unknown := &replication.CallError{Status: 403, Code: "NotAuthorized", Message: "x"}
	back := fromPeer(unknown)
	if errors.Is(back, control.ErrBadRequest) || back == nil {
		t.Fatalf("an unknown refusal became %v", back)
	}
	var pe *PeerError
	if !errors.As(back, &pe) || pe.Status != 403 || pe.Code != "NotAuthorized" || pe.Message != "x" || !errors.Is(back, unknown) {
		t.Fatalf("an unknown refusal came back as %#v, not the peer's answer", back)
	}
}

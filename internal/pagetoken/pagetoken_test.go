package pagetoken

import (
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, after := range []string{"", "a", "00000000000000000012/fs-0123456789abcdef0", "arn:aws:sns:us-east-1:123456789012:t\x00x", strings.Repeat("é", 40)} {
		tok := Encode('k', after)
		if got, ok := Decode('k', tok); !ok || got != after {
			t.Errorf("Decode(Encode(%q)) = %q, %v", after, got, ok)
		}
	}
	for _, i := range []int{0, 1, 99, 1000} {
		if got, ok := DecodeIndex('k', EncodeIndex('k', i), 1000); !ok || got != i {
			t.Errorf("DecodeIndex(EncodeIndex(%d)) = %d, %v", i, got, ok)
		}
	}
}

// TestRefused: every token that is not one Encode issued for the kind is
// refused: appended, removed or changed characters (each position, each
// base64url character), another kind's, the empty string, non-tokens.
func TestRefused(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for _, after := range []string{"", "x", "xy", "00000000000000000012/fs-0123456789abcdef0"} {
		tok := Encode('k', after)
		var bad []string
		for _, c := range alphabet + "=+/ %\x00" {
			bad = append(bad, tok+string(c), tok+string(c)+string(c), tok+"AAAA"+string(c))
			for i := range len(tok) {
				if rune(tok[i]) != c {
					bad = append(bad, tok[:i]+string(c)+tok[i+1:])
				}
			}
		}
		for i := range len(tok) {
			bad = append(bad, tok[:i], tok[i+1:], tok[:i]+tok[i+1:])
		}
		bad = append(bad, Encode('j', after), "", "m5", "o10", "p100", "42")
		for _, b := range bad {
			if got, ok := Decode('k', b); ok {
				t.Fatalf("token %q (of %q) accepted as %q", b, tok, got)
			}
		}
	}
	if _, ok := DecodeIndex('k', EncodeIndex('k', 11), 10); ok {
		t.Error("an index past the list accepted")
	}
	for _, s := range []string{"-1", "+1", "01", "1 ", "x"} {
		if _, ok := DecodeIndex('k', Encode('k', s), 10); ok {
			t.Errorf("index %q accepted", s)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(byte('k'), Encode('k', "00000000000000000012/fs-0123456789abcdef0"))
	f.Add(byte('k'), EncodeIndex('k', 5))
	f.Add(byte('a'), "")
	f.Fuzz(func(t *testing.T, kind byte, tok string) {
		after, ok := Decode(kind, tok)
		if !ok {
			return
		}
		// Only Encode's own string for the position decodes.
		if again := Encode(kind, after); again != tok {
			t.Fatalf("token %q decoded as %q, whose token is %q", tok, after, again)
		}
	})
}

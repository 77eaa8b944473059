// Package kmstest makes the KMS keys and keyrings tests run engines and
// control planes with.
package kmstest

import (
	"testing"

	"github.com/regionfs/regionfs/internal/engine/kms"
)

// Key generates a new key id with aliases, failing t on error.
func Key(t testing.TB, id string, aliases ...string) kms.Key {
	t.Helper()
	k, err := kms.Generate(id, aliases...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Ring returns a keyring of keys, failing t on error.
func Ring(t testing.TB, keys ...kms.Key) *kms.Keyring {
	t.Helper()
	r, err := kms.New(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Keyring returns a keyring of one new key id with aliases.
func Keyring(t testing.TB, id string, aliases ...string) *kms.Keyring {
	t.Helper()
	return Ring(t, Key(t, id, aliases...))
}

// Package pgtest gives tests the PostgreSQL server they run against
// (REGIONFS_TEST_POSTGRES_URL, which .ci/run sets from scripts/backends.sh)
// and a fresh schema on it per test.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// URL returns the test server's URL; without one the test is skipped
// (it fails when REGIONFS_REQUIRE_TOOLS=1, as in CI).
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("REGIONFS_TEST_POSTGRES_URL")
	if u == "" {
		if os.Getenv("REGIONFS_REQUIRE_TOOLS") == "1" {
			t.Fatal("REGIONFS_TEST_POSTGRES_URL is not set (eval \"$(scripts/backends.sh up DIR)\" starts a server)")
		}
		t.Skip("no PostgreSQL: set REGIONFS_TEST_POSTGRES_URL (scripts/backends.sh up DIR prints one)")
	}
	return strings.ReplaceAll(u, "{region}", "test")
}

// Schema returns a fresh schema name on url, dropped when the test ends.
func Schema(t testing.TB, url string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Logf("drop schema %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", name, err)
		}
	})
	return name
}

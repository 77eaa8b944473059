package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

// TestCreateVisible: a create answered once visible (CreateVisible, the
// mount's REGIONFS_CREATE_VISIBLE) is readable at once and costs no
// durable commit of its own: the next durable change (here a SETATTR of
// another file) or SyncVisible makes it durable, and what a crash leaves
// before then has neither the file nor its (inode, generation) for anyone
// else — the first create after an open waits for its sync, so the
// generations handed out after it cannot come back after a crash.
//
// The finisher's own sync of the log (Options.LazySyncDelay) is an hour
// away here: at the default second, a stall of a second on a loaded
// machine between an early create and the crash after it made the create
// durable, and the test failed (held 1.1 s there: every time).
// TestCreateVisibleSyncedAfterDelay checks that sync.
func TestCreateVisible(t *testing.T) {
	v := newEnv(t, func(o *Options) { o.LazySyncDelay = time.Hour })
	ctx := context.Background()
	fs := must(v.e.CreateFS(ctx, "fs", FSOptions{}))(t)
	mode := uint32(0o640)
	sa := SetAttr{Mode: &mode}
	root := must(fs.GetAttr(ctx, RootIno))(t)

	crashed := func() *FS {
		t.Helper()
		v.crash()
		return must(v.e.FS("fs"))(t)
	}
	has := func(fs *FS, name string) bool {
		t.Helper()
		_, err := fs.Lookup(ctx, RootCred, RootIno, name)
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}

	// The first create after an open bumps the generations' boot
	// counter: answered once durable (one commit), it survives a crash.
	fs = crashed()
	commits := fs.Stats().Commits
	must(fs.CreateVisible(ctx, RootCred, RootIno, root.Gen, "first", CreateExclusive, sa, 1))(t)
	if got := fs.Stats().Commits - commits; got != 1 {
		t.Errorf("the first create after an open took %d durable commits before its answer, want 1", got)
	}
	if fs = crashed(); !has(fs, "first") {
		t.Fatal("the first create after an open is gone after a crash")
	}
	first := must(fs.Lookup(ctx, RootCred, RootIno, "first"))(t)
	must(fs.CreateVisible(ctx, RootCred, RootIno, root.Gen, "boot", CreateExclusive, sa, 2))(t)

	// Answered before its sync: readable, no durable commit, gone after
	// a crash, and its inode and generation are not handed out again.
	commits = fs.Stats().Commits
	durable := fs.Replica().DurableSeq()
	lost := must(fs.CreateVisible(ctx, RootCred, RootIno, root.Gen, "lost", CreateExclusive, sa, 3))(t)
	if got := fs.Stats().Commits - commits; got != 0 {
		t.Errorf("a create answered once visible took %d durable commits, want 0", got)
	}
	if got := fs.Replica().DurableSeq(); got != durable {
		t.Errorf("the durable mark moved from %d to %d when a create was answered before its sync", durable, got)
	}
	if !has(fs, "lost") || lost.Attr.Mode&0o7777 != mode {
		t.Fatalf("a create answered once visible: not readable, or mode %o", lost.Attr.Mode&0o7777)
	}
	fs = crashed()
	if has(fs, "lost") {
		t.Fatal("a create never made durable survived a crash")
	}
	for i := range 4 {
		e := must(fs.Create(ctx, RootCred, RootIno, "after"+string(rune('a'+i)), CreateGuarded, sa, 0))(t)
		if e.Attr.Ino == lost.Attr.Ino && e.Attr.Gen == lost.Attr.Gen {
			t.Fatalf("after the crash a new file has the lost file's inode %d and generation %#x: its handle would name it", e.Attr.Ino, e.Attr.Gen)
		}
	}

	// The next durable change makes it durable: one commit for both.
	must(fs.CreateVisible(ctx, RootCred, RootIno, root.Gen, "boot2", CreateExclusive, sa, 4))(t)
	commits = fs.Stats().Commits
	must(fs.CreateVisible(ctx, RootCred, RootIno, root.Gen, "kept", CreateExclusive, sa, 5))(t)
	if _, _, err := fs.SetAttr(ctx, RootCred, first.Ino, SetAttr{Mode: &mode}, nil); err != nil {
		t.Fatal(err)
	}
	if got := fs.Stats().Commits - commits; got != 1 {
		t.Errorf("a create answered once visible and a SETATTR after it took %d durable commits, want 1", got)
	}
	if fs = crashed(); !has(fs, "kept") {
		t.Fatal("a create followed by an answered durable change is gone after a crash")
	}

	// A change of the file itself (here a rename, by anyone) is durable
	// when answered, and after the create: it covers it.
	must(fs.CreateVisible(ctx, RootCred, RootIno, root.Gen, "boot4", CreateExclusive, sa, 8))(t)
	must(fs.CreateVisible(ctx, RootCred, RootIno, root.Gen, "renamed", CreateExclusive, sa, 9))(t)
	if _, _, err := fs.Rename(ctx, RootCred, RootIno, "renamed", RootIno, "moved"); err != nil {
		t.Fatal(err)
	}
	if fs = crashed(); !has(fs, "moved") || has(fs, "renamed") {
		t.Fatal("a create answered once visible and renamed (answered) is not under its new name after a crash")
	}

	// SyncVisible makes it durable with nothing else to come.
	must(fs.CreateVisible(ctx, RootCred, RootIno, root.Gen, "boot3", CreateExclusive, sa, 6))(t)
	must(fs.CreateVisible(ctx, RootCred, RootIno, root.Gen, "synced", CreateExclusive, sa, 7))(t)
	if err := fs.SyncVisible(ctx); err != nil {
		t.Fatal(err)
	}
	if fs = crashed(); !has(fs, "synced") {
		t.Fatal("a create answered once visible is gone after a crash although SyncVisible returned")
	}
}

// TestCreateVisibleSyncedAfterDelay: with nothing else to come, the
// finisher syncs the log for an early create within
// Options.LazySyncDelay: the durable mark (what ships) moves past it, and
// it survives a crash.
func TestCreateVisibleSyncedAfterDelay(t *testing.T) {
	v := newEnv(t, func(o *Options) { o.LazySyncDelay = 10 * time.Millisecond })
	ctx := context.Background()
	fs := must(v.e.CreateFS(ctx, "fs", FSOptions{}))(t)
	root := must(fs.GetAttr(ctx, RootIno))(t)
	// The first create after an open is answered once durable.
	must(fs.CreateVisible(ctx, RootCred, RootIno, root.Gen, "boot", CreateExclusive, SetAttr{}, 1))(t)
	durable := fs.Replica().DurableSeq()
	commits := fs.Stats().Commits
	must(fs.CreateVisible(ctx, RootCred, RootIno, root.Gen, "alone", CreateExclusive, SetAttr{}, 2))(t)
	testkit.WaitFor(t, "the durable mark past a lone early create", 30*time.Second, func() bool {
		return fs.Replica().DurableSeq() > durable
	})
	if got := fs.Stats().Commits - commits; got != 0 {
		t.Errorf("a lone early create made durable by the log's sync took %d durable commits, want 0", got)
	}
	v.crash()
	fs = must(v.e.FS("fs"))(t)
	if _, err := fs.Lookup(ctx, RootCred, RootIno, "alone"); err != nil {
		t.Fatalf("a lone create answered once visible is gone after a crash once the durable mark passed it: %v", err)
	}
}

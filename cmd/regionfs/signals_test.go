package main

import (
	"context"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"testing"
)

// TestStopSignalsKeepIgnoredHUP: a regionfs started with SIGHUP ignored
// (nohup regionfs serve &) is not stopped by a SIGHUP (the closed
// terminal nohup is for): stopSignals leaves SIGHUP out, and Notify does
// not undo the ignore (signal.Notify of an ignored SIGHUP installs a
// handler). Started without, SIGHUP stops it (61fd028). Before, the
// signal list named SIGHUP always, and Notify re-enabled it.
func TestStopSignalsKeepIgnoredHUP(t *testing.T) {
	wasIgnored := signal.Ignored(syscall.SIGHUP)
	t.Cleanup(func() {
		if wasIgnored {
			signal.Ignore(syscall.SIGHUP)
		} else {
			signal.Reset(syscall.SIGHUP)
		}
	})
	if !wasIgnored && !slices.Contains(stopSignals(), os.Signal(syscall.SIGHUP)) {
		t.Fatal("SIGHUP does not stop a process that does not ignore it")
	}
	signal.Ignore(syscall.SIGHUP)
	if slices.Contains(stopSignals(), os.Signal(syscall.SIGHUP)) {
		t.Fatalf("stopSignals %v names SIGHUP, ignored at start", stopSignals())
	}
	_, stop := signal.NotifyContext(context.Background(), stopSignals()...)
	defer stop()
	if !signal.Ignored(syscall.SIGHUP) {
		t.Fatal("listening for the stop signals undid the ignored SIGHUP: a closed terminal stops the server nohup kept")
	}
}

package main

import (
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSdNotify(t *testing.T) {
	t.Setenv(notifySocketEnv, "")
	if err := sdNotify("READY=1"); err != nil {
		t.Fatalf("without %s: %v", notifySocketEnv, err)
	}
	for _, name := range []string{filepath.Join(t.TempDir(), "notify"), "@regionfs-test-notify-" + strings.ReplaceAll(t.Name(), "/", "-")} {
		addr := name
		if addr[0] == '@' {
			addr = "\x00" + addr[1:]
		}
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv(notifySocketEnv, name)
		if err := sdNotify("READY=1\nSTATUS=up"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 256)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "READY=1\nSTATUS=up" {
			t.Errorf("%s: got %q %v", name, buf[:n], err)
		}
		c.Close()
	}
	t.Setenv(notifySocketEnv, filepath.Join(t.TempDir(), "absent"))
	if err := sdNotify("READY=1"); err == nil || !strings.Contains(err.Error(), notifySocketEnv) {
		t.Errorf("a socket nobody listens on: %v", err)
	}
}

// TestNotifyReadyStopping: READY=1 with the status, then STOPPING=1 when
// the returned function runs (serve calls it when a signal or a drain
// ends serving, before it closes the node).
func TestNotifyReadyStopping(t *testing.T) {
	name := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv(notifySocketEnv, name)
	read := func() string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 256)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	stopping := notifyReady(slog.New(slog.DiscardHandler), "serving")
	if got := read(); got != "READY=1\nSTATUS=serving" {
		t.Fatalf("ready: %q", got)
	}
	stopping()
	if got := read(); got != "STOPPING=1" {
		t.Fatalf("stopping: %q", got)
	}
}

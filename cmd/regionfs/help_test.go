package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

// TestHelpTopicsAndMan: the help topics are listed and shown; the manual
// page names every command and topic and renders without a warning.
func TestHelpTopicsAndMan(t *testing.T) {
	out, err := runRoot(t, "--help")
	if err != nil || !strings.Contains(out, "Additional help topics:") {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	for _, topic := range helpTopics() {
		if !strings.Contains(out, "regionfs "+topic.Name()) {
			t.Errorf("--help does not list %s", topic.Name())
		}
		got, err := runRoot(t, "help", topic.Name())
		if err != nil || !strings.Contains(got, strings.Split(topic.Long, "\n")[0]) {
			t.Errorf("help %s: %v\n%s", topic.Name(), err, got)
		}
	}
	if got, _ := runRoot(t, "help", "ports"); !strings.Contains(got, "7443/tcp") || !strings.Contains(got, "2049/tcp") {
		t.Errorf("help ports:\n%s", got)
	}

	var page bytes.Buffer
	if err := writeMan(&page, newRootCmd(), time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".TH REGIONFS 1 \"2026-12-04\"", ".SH NAME\nregionfs \\- ", ".SS serve", ".SS keygen", ".SS status",
		".SS dev region", "\\-\\-all\\-regions", ".SH PORTS", ".SH EXIT STATUS", ".SH FILES"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	man := testkit.NeedTool(t, "man")
	path := filepath.Join(t.TempDir(), "regionfs.1")
	os.WriteFile(path, page.Bytes(), 0o644)
	cmd := exec.Command(man, "-l", "--warnings", path)
	cmd.Env = append(os.Environ(), "MANWIDTH=100", "MANPAGER=cat", "PAGER=cat")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	text, err := cmd.Output()
	if err != nil || stderr.Len() > 0 || !strings.Contains(string(text), "regionfs keygen") {
		t.Fatalf("man -l: %v\n%s\n%s", err, stderr.String(), text)
	}
}

package scaleoute2e

import (
	"os"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/testkit/docshape"
)

// scaleOutDoc is docs/scale-out.md, whose output blocks these tests print.
const scaleOutDoc = "../../../docs/scale-out.md"

// logLine returns the first line of n's log that holds s ("" when none
// does), without its time= attribute, which the document leaves out.
func logLine(n *node, s string) string {
	for _, l := range strings.Split(n.logText(), "\n") {
		if strings.Contains(l, s) {
			if rest, ok := strings.CutPrefix(l, "time="); ok {
				if _, after, ok := strings.Cut(rest, " "); ok {
					return after
				}
			}
			return l
		}
	}
	return ""
}

// matchLog fails t (and goes on) unless the first lines of n's log that
// hold msgs, one line for each, have the shape of the block that
// <!-- output: name --> marks in docs/scale-out.md.
func matchLog(t *testing.T, n *node, name string, msgs ...string) {
	t.Helper()
	var got []string
	for _, m := range msgs {
		l := logLine(n, m)
		if l == "" {
			t.Errorf("%s: %s's log has no line holding %q\n%s", name, n.name, m, tail(n.logText(), 40))
			return
		}
		got = append(got, l)
	}
	matchDoc(t, name, strings.Join(got, "\n"))
}

// matchDoc fails t (and goes on) unless out has the shape of the block
// that <!-- output: name --> marks in docs/scale-out.md.
func matchDoc(t *testing.T, name, out string) {
	t.Helper()
	if err := docshape.Compare(scaleOutDoc, name, out); err != nil {
		t.Error(err)
	}
}

// asHosts gives the nodes of `regionfs cluster nodes` output host names of
// their own, as the document shows them (rfs-a for node-a): here they all
// run on this machine.
func asHosts(t *testing.T, out string) string {
	t.Helper()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if n, ok := strings.CutPrefix(l, "node-"); ok && strings.HasSuffix(l, " "+host) {
			lines[i] = strings.TrimSuffix(l, host) + "rfs-" + n[:strings.IndexAny(n+" ", " ")]
		}
	}
	return strings.Join(lines, "\n")
}

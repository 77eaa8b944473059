package main

import (
	"testing"

	"github.com/regionfs/regionfs/internal/testkit/docshape"
)

// runbook is docs/runbook.md, whose output blocks the end-to-end tests
// named in it print.
const runbook = "../../docs/runbook.md"

// matchDoc fails t (and goes on) when out does not have the shape of the
// block that <!-- output: name --> marks in the Markdown file doc, so that
// a document that drifts from the commands fails CI.
func matchDoc(t *testing.T, doc, name, out string) {
	t.Helper()
	if err := docshape.Compare(doc, name, out); err != nil {
		t.Error(err)
	}
}

// Command doccheck runs the examples of Markdown documents and compares
// what they print with what the documents show, by shape.
//
//	go run ./test/doccheck [-dir DIR] [-timeout 60s] README.md docs/x.md
//
// A ```console block preceded by the line
//
//	<!-- doccheck -->
//
// is run: its "$ " lines are commands, the lines after each one its
// documented output. Blocks run in order, in one bash session in DIR (so
// variables and the working directory carry over), with stderr merged into
// stdout. Other blocks are documentation only.
//
// Output is compared by shape (internal/testkit/docshape), line by line,
// after both sides are normalised: resource ids (fs-…, fsmt-…, subnet-…,
// sg-…, rc-…, vpc-…, fsap-…, drill-…, access keys, key UUIDs), timestamps,
// byte sizes with their unit, durations and other numbers become
// placeholders, and runs of blanks one
// space; blank lines are left out on both sides. In the document, "…"
// stands for any text within a line, and a line that is only "…" for any
// number of lines.
//
// A command whose output does not have the documented shape is run again
// (every 200 ms, up to -retry) when running it again cannot change anything
// the document relies on: it failed (exit status not 0: a refused request
// changes nothing), or it only reads (aws … describe-/list-/get-, nfs-cat,
// nfs-ls, regionfs status, echo, cat). A documented command may thus
// follow an asynchronous change (a file system becoming available, a
// replication ENABLED) as a reader of the document would by looking again.
// Any other mismatch fails the check, showing both sides. A command
// documented without output must exit with status 0; one documented with
// output is judged by its output (a documented error is fine).
package main

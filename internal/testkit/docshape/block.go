package docshape

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// Diff shows both sides, marked ">>" where they part: the first documented
// line the output does not follow and, when it is known (no "…" line
// before it), the output line in its place.
func Diff(want, got []string) string {
	var b strings.Builder
	wi, gi := firstMismatch(want, got)
	side := func(title string, lines []string, first int) {
		fmt.Fprintf(&b, "%s:\n", title)
		for i, l := range lines {
			mark := "   "
			if i == first {
				mark = ">> "
			}
			fmt.Fprintf(&b, "%s%s\n", mark, l)
		}
		if len(lines) == 0 {
			b.WriteString("   (nothing)\n")
		}
	}
	side("documented", want, wi)
	side("got", got, gi)
	return b.String()
}

// firstMismatch returns the index of the first line of want that got does
// not follow (-1 when every one is followed: got has more lines), and the
// index of the line of got in its place (-1 when a "…" line comes before,
// so that any line could be).
func firstMismatch(want, got []string) (wi, gi int) {
	p := 0
	for p < len(want) && Matches(append(slices.Clone(want[:p+1]), "…"), got) {
		p++
	}
	wi = p
	if p == len(want) {
		wi = -1
	}
	// The p-th non-blank documented line, when no "…" precedes it, stands
	// where the output's p-th non-blank line is.
	n := 0
	for _, l := range want[:p] {
		switch strings.TrimSpace(l) {
		case "…":
			return wi, -1
		case "":
		default:
			n++
		}
	}
	for i, l := range got {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n == 0 {
			return wi, i
		}
		n--
	}
	return wi, -1
}

// OutputMarker is the line that names the output block following it:
// <!-- output: NAME -->.
func OutputMarker(name string) string { return "<!-- output: " + name + " -->" }

// Block returns the lines of the fenced block (```) that follows the line
// OutputMarker(name) in a Markdown text, and the line number of the marker.
// It is an error when the marker is missing or appears twice, or when the
// next line does not open a block that is closed.
func Block(text, name string) ([]string, int, error) {
	marker := OutputMarker(name)
	lines := strings.Split(text, "\n")
	at := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == marker {
			if at >= 0 {
				return nil, 0, fmt.Errorf("%s appears twice (lines %d and %d)", marker, at+1, i+1)
			}
			at = i
		}
	}
	if at < 0 {
		return nil, 0, fmt.Errorf("no %s", marker)
	}
	if at+1 >= len(lines) || !strings.HasPrefix(strings.TrimSpace(lines[at+1]), "```") {
		return nil, 0, fmt.Errorf("line %d: %s is not followed by a ``` block", at+1, marker)
	}
	indent := lines[at+1][:len(lines[at+1])-len(strings.TrimLeft(lines[at+1], " "))]
	var body []string
	for _, l := range lines[at+2:] {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			return body, at + 1, nil
		}
		body = append(body, strings.TrimPrefix(l, indent))
	}
	return nil, 0, fmt.Errorf("line %d: the block after %s is not closed", at+2, marker)
}

// Compare reports, as an error showing both sides, whether got (a
// program's output) does not have the shape of the block OutputMarker(name)
// names in the Markdown file.
func Compare(file, name, got string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	want, line, err := Block(string(b), name)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	gotLines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	if !Matches(want, gotLines) {
		return fmt.Errorf("%s:%d: the output of %s does not have the documented shape (fix the program or the document)\n%s",
			file, line, name, Diff(want, gotLines))
	}
	return nil
}

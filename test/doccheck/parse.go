package main

import (
	"bufio"
	"fmt"
	"strings"
)

// marker opts a console block in.
const marker = "<!-- doccheck -->"

// step is one documented command and its documented output.
type step struct {
	file string
	line int // of the command in file
	cmd  string
	want []string
}

// parse returns the steps of the marked console blocks of a Markdown
// document, in order.
func parse(file, text string) ([]step, error) {
	var steps []step
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	marked, inBlock, run := false, false, false
	for sc.Scan() {
		n++
		l := sc.Text()
		switch {
		case !inBlock && strings.TrimSpace(l) == marker:
			marked = true
		case !inBlock && strings.HasPrefix(l, "```"):
			inBlock = true
			run = marked && strings.TrimSpace(strings.TrimPrefix(l, "```")) == "console"
			if marked && !run {
				return nil, fmt.Errorf("%s:%d: %s before a block that is not ```console", file, n, marker)
			}
			marked = false
		case inBlock && strings.HasPrefix(l, "```"):
			inBlock = false
		case inBlock && run && strings.HasPrefix(l, "$ "):
			steps = append(steps, step{file: file, line: n, cmd: strings.TrimPrefix(l, "$ ")})
		case inBlock && run:
			if len(steps) == 0 || steps[len(steps)-1].file != file {
				return nil, fmt.Errorf("%s:%d: output before the block's first command", file, n)
			}
			s := &steps[len(steps)-1]
			s.want = append(s.want, l)
		case !inBlock && marked && strings.TrimSpace(l) != "":
			return nil, fmt.Errorf("%s:%d: %s is not followed by a block", file, n, marker)
		}
	}
	if inBlock {
		return nil, fmt.Errorf("%s: a block is not closed", file)
	}
	return steps, sc.Err()
}

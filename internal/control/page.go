package control

import (
	"encoding/base64"
	"regexp"
	"sort"
)

var sortKeyPattern = regexp.MustCompile(`^[0-9]{20}/[a-z]{2,4}-[0-9a-f]{8,40}$`)

// paginate returns the page of sorted that starts at p.Marker, and the
// marker of the next page ("" when this is the last). The page holds p.Max
// items, def when 0, at most max.
func paginate[R interface{ key() string }](sorted []R, p Page, def, max int) ([]R, string, error) {
	n := p.Max
	switch {
	case n < 0:
		return nil, "", badRequest("The page size must be at least 1.")
	case n == 0:
		n = def
	case n > max:
		n = max
	}
	start := 0
	if p.Marker != "" {
		k, err := base64.RawURLEncoding.DecodeString(p.Marker)
		if err != nil || !sortKeyPattern.Match(k) {
			return nil, "", badRequest("Invalid pagination token '%s'.", clip(p.Marker))
		}
		start = sort.Search(len(sorted), func(i int) bool { return sorted[i].key() >= string(k) })
	}
	end := min(start+n, len(sorted))
	next := ""
	if end < len(sorted) {
		next = base64.RawURLEncoding.EncodeToString([]byte(sorted[end].key()))
	}
	return sorted[start:end], next, nil
}

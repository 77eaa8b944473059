package control

import (
	"regexp"
	"sort"

	"github.com/regionfs/regionfs/internal/pagetoken"
)

var sortKeyPattern = regexp.MustCompile(`^[0-9]{20}/[a-z]{2,4}-[0-9a-f]{8,40}$`)

// Kinds of markers (package pagetoken): a marker is only good for the
// list that issued it.
const (
	markerFileSystems  byte = 'f'
	markerMountTargets byte = 'm'
	markerAccessPoints byte = 'a'
	markerTags         byte = 'g'
)

// paginate returns the page of sorted that starts at p.Marker, and the
// marker (of kind) of the next page ("" when this is the last). The page
// holds p.Max items, def when 0, at most max.
func paginate[R interface{ key() string }](sorted []R, kind byte, p Page, def, max int) ([]R, string, error) {
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
		k, ok := pagetoken.Decode(kind, p.Marker)
		if !ok || !sortKeyPattern.MatchString(k) {
			return nil, "", badMarker(p.Marker)
		}
		start = sort.Search(len(sorted), func(i int) bool { return sorted[i].key() >= k })
	}
	end := min(start+n, len(sorted))
	next := ""
	if end < len(sorted) {
		next = pagetoken.Encode(kind, sorted[end].key())
	}
	return sorted[start:end], next, nil
}

// badMarker refuses a marker (or NextToken) the list did not issue.
func badMarker(marker string) error {
	return badRequest("Invalid pagination token '%s'.", clip(marker))
}

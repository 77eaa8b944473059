package control

import (
	"context"
	"regexp"
	"strings"

	"github.com/regionfs/regionfs/internal/pagetoken"
)

// MaxTagKeys bounds the keys of one UntagResource or DeleteTags call.
const MaxTagKeys = 50

var resourcePattern = regexp.MustCompile(`^fs(ap)?-[0-9a-f]{8,40}$`)

// taggable is a file system or an access point found by reference.
type taggable struct {
	fs *fsRecord
	ap *apRecord
}

func (x taggable) tags() []Tag {
	if x.fs != nil {
		return x.fs.Tags
	}
	return x.ap.Tags
}

// lookupResourceLocked resolves the id or ARN of a file system or an
// access point.
func (r *Region) lookupResourceLocked(ref string) (taggable, error) {
	id := ref
	if strings.HasPrefix(ref, "arn:") {
		if i := strings.LastIndexByte(ref, '/'); i >= 0 {
			id = ref[i+1:]
		}
	}
	if !resourcePattern.MatchString(id) {
		return taggable{}, badRequest("Invalid resource id or ARN '%s'.", clip(ref))
	}
	if strings.HasPrefix(id, apPrefix) {
		a, err := r.lookupAPLocked(ref)
		return taggable{ap: a}, err
	}
	f, err := r.lookupFSLocked(ref)
	return taggable{fs: f}, err
}

// setTagsLocked stores new tags of a resource.
func (r *Region) setTagsLocked(x taggable, tags []Tag) error {
	if len(tags) > MaxTags {
		return badRequest("A resource can have at most %d tags; this request would leave %d.", MaxTags, len(tags))
	}
	t := r.begin()
	if x.fs != nil {
		n := *x.fs
		n.Tags = tags
		t.putFS(&n)
	} else {
		n := *x.ap
		n.Tags = tags
		t.putAP(&n)
	}
	return t.commit()
}

func checkTagKeys(keys []string) error {
	if len(keys) < 1 || len(keys) > MaxTagKeys {
		return badRequest("Between 1 and %d tag keys must be given; %d were.", MaxTagKeys, len(keys))
	}
	for _, k := range keys {
		if err := checkTagKey(k); err != nil {
			return err
		}
	}
	return nil
}

// TagResource adds tags to a file system or access point (id or ARN),
// overwriting the values of keys it already has.
func (r *Region) TagResource(_ context.Context, ref string, tags []Tag) error {
	if err := r.checkNewTags(tags); err != nil {
		return err
	}
	return r.retag(ref, r.lookupResourceLocked, func(old []Tag) []Tag { return mergeTags(old, tags) })
}

// UntagResource removes tag keys from a file system or access point; keys
// it does not have are ignored.
func (r *Region) UntagResource(_ context.Context, ref string, keys []string) error {
	if err := checkTagKeys(keys); err != nil {
		return err
	}
	return r.retag(ref, r.lookupResourceLocked, func(old []Tag) []Tag { return removeTags(old, keys) })
}

// ListTagsForResource lists the tags of a file system or access point, by
// key, one page at a time (100 by default and at most).
func (r *Region) ListTagsForResource(_ context.Context, ref string, p Page) ([]Tag, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	x, err := r.lookupResourceLocked(ref)
	if err != nil {
		return nil, "", err
	}
	return pageTags(x.tags(), p)
}

// CreateTags adds tags to a file system (the deprecated API).
func (r *Region) CreateTags(_ context.Context, ref string, tags []Tag) error {
	if err := r.checkNewTags(tags); err != nil {
		return err
	}
	return r.retag(ref, r.lookupFSTaggableLocked, func(old []Tag) []Tag { return mergeTags(old, tags) })
}

// DeleteTags removes tag keys from a file system (the deprecated API).
func (r *Region) DeleteTags(_ context.Context, ref string, keys []string) error {
	if err := checkTagKeys(keys); err != nil {
		return err
	}
	return r.retag(ref, r.lookupFSTaggableLocked, func(old []Tag) []Tag { return removeTags(old, keys) })
}

// checkNewTags checks tags to add: room on the data disk, at least one,
// each valid.
func (r *Region) checkNewTags(tags []Tag) error {
	if err := r.checkSpace(); err != nil {
		return err
	}
	if len(tags) == 0 {
		return badRequest("At least one tag must be given.")
	}
	return checkTags(tags)
}

// retag replaces the tags of the resource lookup finds by change(its
// tags), under the region's lock.
func (r *Region) retag(ref string, lookup func(string) (taggable, error), change func([]Tag) []Tag) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkLocked(); err != nil {
		return err
	}
	x, err := lookup(ref)
	if err != nil {
		return err
	}
	return r.setTagsLocked(x, change(x.tags()))
}

// lookupFSTaggableLocked is lookupFSLocked for retag.
func (r *Region) lookupFSTaggableLocked(ref string) (taggable, error) {
	f, err := r.lookupFSLocked(ref)
	if err != nil {
		return taggable{}, err
	}
	return taggable{fs: f}, nil
}

// DescribeTags lists the tags of a file system (the deprecated API), one
// page at a time (100 by default and at most).
func (r *Region) DescribeTags(_ context.Context, ref string, p Page) ([]Tag, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.lookupFSLocked(ref)
	if err != nil {
		return nil, "", err
	}
	return pageTags(f.Tags, p)
}

// pageTags pages a tag list (sorted by key); markers are positions.
func pageTags(tags []Tag, p Page) ([]Tag, string, error) {
	n := p.Max
	switch {
	case n < 0:
		return nil, "", badRequest("The page size must be at least 1.")
	case n == 0 || n > 100:
		n = 100
	}
	start := 0
	if p.Marker != "" {
		i, ok := pagetoken.DecodeIndex(markerTags, p.Marker, MaxTags)
		if !ok {
			return nil, "", badMarker(p.Marker)
		}
		start = min(i, len(tags))
	}
	end := min(start+n, len(tags))
	next := ""
	if end < len(tags) {
		next = pagetoken.EncodeIndex(markerTags, end)
	}
	out := make([]Tag, end-start)
	copy(out, tags[start:end])
	return out, next, nil
}

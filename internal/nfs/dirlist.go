package nfs

import (
	"encoding/binary"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// Directory listings (READDIR, READDIRPLUS).
//
// Cookies: "." is 1, ".." is 2, and an entry whose engine cookie is c has
// cookie c+2. Engine cookies are stable for an entry's whole life and
// resuming after one costs a seek, so a page costs O(page), never O(dir),
// and listings interleaved with creates and removes neither repeat nor
// skip surviving entries. Because cookies never go stale, the cookie
// verifier is constant per directory (its generation): a verifier from
// another directory incarnation is NFS3ERR_BAD_COOKIE.
const (
	cookieDot    = 1
	cookieDotDot = 2
	cookieBase   = 2
)

// minEntryBytes is the smallest entry3 (a one-byte name).
const minEntryBytes = 4 + 8 + 8 + 8

// listing is a page of a directory, within byte budgets.
type listing struct {
	entries []proto.DirEntry
	eof     bool
}

func cookieVerf(dir *engine.Attr) [proto.CookieVerfSize]byte {
	var v [proto.CookieVerfSize]byte
	binary.BigEndian.PutUint64(v[:], dir.Gen)
	return v
}

// list reads a directory page after cookie. budget bounds the encoded
// entries (entry3 or entryplus3); dirBudget bounds the entry3 parts
// (READDIRPLUS's dircount; 0 = no separate bound).
func (r *request) list(t *target, dir *engine.Attr, cookie uint64, budget, dirBudget int, plus bool) (listing, error) {
	var out listing
	used, dirUsed := 0, 0
	fits := func(name string, attr bool, fhLen int) bool {
		n := proto.EntrySize(name)
		full := n
		if plus {
			full = proto.EntryPlusSize(name, attr, fhLen)
		}
		if used+full > budget || dirBudget > 0 && dirUsed+n > dirBudget {
			return false
		}
		used += full
		dirUsed += n
		return true
	}
	add := func(name string, ino uint64, a *engine.Attr, c uint64) bool {
		var fh proto.FH
		var pa *proto.Attr
		fhLen := -1
		if plus && a != nil {
			fh = t.child(*a)
			fhLen = len(fh)
			r.s.wb.overlayAttr(t.fs, a)
			pa = t.x.fattr(a)
		}
		if !fits(name, pa != nil, fhLen) {
			return false
		}
		out.entries = append(out.entries, proto.DirEntry{FileID: ino, Name: name, Cookie: c, Attr: pa, FH: fh})
		return true
	}
	if cookie < cookieDot {
		d := *dir
		if !add(".", d.Ino, &d, cookieDot) {
			return out, nil
		}
	}
	if cookie < cookieDotDot {
		parent := *dir
		pa := &parent
		if !t.isRoot() {
			p, err := t.fs.GetAttr(r.ctx, dir.Parent)
			if err != nil {
				return out, err
			}
			parent = p
			// A directory moved out of an export's sub-directory: its
			// parent is not given out (see LOOKUP "..").
			if in, err := t.inside(r.ctx, p.Ino); err != nil || !in {
				pa = nil
			}
		}
		if !add("..", parent.Ino, pa, cookieDotDot) {
			return out, nil
		}
	}
	ec := uint64(0)
	if cookie > cookieBase {
		ec = cookie - cookieBase
	}
	per := minEntryBytes
	if plus {
		per += 8 + proto.AttrSize + 4 + proto.FHSize
	}
	for {
		n := min(max((budget-used)/per, 16), 1024)
		page, eof, _, err := t.fs.ReadDir(r.ctx, t.cred, t.h.ino, ec, n, plus)
		if err != nil {
			return out, err
		}
		for i := range page {
			e := &page[i]
			if !add(e.Name, e.Ino, e.Attr, e.Cookie+cookieBase) {
				return out, nil
			}
			ec = e.Cookie
		}
		if eof {
			out.eof = true
			return out, nil
		}
		if len(page) == 0 {
			return out, nil
		}
	}
}

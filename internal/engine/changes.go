package engine

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"
)

// Change is one transaction of a file system's journal, as a person
// reads it: for the loss report of a failover, the changes an old source
// committed after its promoted replica's recovery point.
type Change struct {
	Seq   uint64
	Time  time.Time
	Op    string
	Paths []string // as far as they can still be resolved
	Inos  []uint64
}

// Changes lists the transactions the file system committed after seq, at
// most max of them, with the paths they touched. complete is false when
// there were more, or when the journal no longer reaches back to seq+1
// (then the list starts later).
func (rep *Replica) Changes(ctx context.Context, seq uint64, max int) (changes []Change, complete bool, err error) {
	fs := rep.fs
	complete = true
	start, err := rep.JournalStart()
	if err != nil {
		return nil, false, err
	}
	from := seq + 1
	if start > from {
		from, complete = start, false
	}
	paths := &pathCache{fs: fs, dirs: map[uint64]string{RootIno: "/"}}
	for from <= rep.DurableSeq() {
		recs, err := rep.ReadJournal(ctx, from, 256, 4<<20)
		if errors.Is(err, ErrTruncated) {
			return changes, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if len(changes) == max {
				return changes, false, nil
			}
			changes = append(changes, Change{Seq: r.Seq, Time: r.Time, Op: r.Op.Op, Inos: r.Op.Inos, Paths: paths.of(ctx, r.Op)})
		}
		from = recs[len(recs)-1].Seq + 1
	}
	return changes, complete, nil
}

// pathCache resolves the paths an operation summary names: a directory
// inode and a name (create, remove, rename: dir, [dir2,] ino), or just an
// inode (write, setattr).
type pathCache struct {
	fs   *FS
	dirs map[uint64]string
}

func (p *pathCache) of(ctx context.Context, op OpSummary) []string {
	var out []string
	switch {
	case len(op.Names) == 2 && len(op.Inos) >= 2: // rename
		out = append(out, p.join(ctx, op.Inos[0], op.Names[0]), p.join(ctx, op.Inos[1], op.Names[1]))
	case len(op.Names) == 1 && len(op.Inos) >= 1:
		out = append(out, p.join(ctx, op.Inos[0], op.Names[0]))
	case len(op.Inos) == 1:
		if s := p.ino(ctx, op.Inos[0]); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (p *pathCache) join(ctx context.Context, dir uint64, name string) string {
	d := p.dir(ctx, dir, 0)
	if d == "" {
		d = fmt.Sprintf("<dir inode %d>", dir)
	}
	return path.Join(d, name)
}

// ino resolves a non-directory inode by looking for it in the directories
// already known (a full search would be too costly).
func (p *pathCache) ino(ctx context.Context, ino uint64) string {
	if d := p.dir(ctx, ino, 0); d != "" {
		return d
	}
	for dir, dp := range p.dirs {
		if name := p.nameIn(ctx, dir, ino); name != "" {
			return path.Join(dp, name)
		}
	}
	return fmt.Sprintf("<inode %d>", ino)
}

// dir resolves a directory's path through its parent links.
func (p *pathCache) dir(ctx context.Context, ino uint64, depth int) string {
	if s, ok := p.dirs[ino]; ok {
		return s
	}
	if depth > 256 {
		return ""
	}
	a, err := p.fs.GetAttr(ctx, ino)
	if err != nil || a.Type != TypeDir || a.Parent == 0 || a.Parent == ino {
		return ""
	}
	parent := p.dir(ctx, a.Parent, depth+1)
	if parent == "" {
		return ""
	}
	name := p.nameIn(ctx, a.Parent, ino)
	if name == "" {
		return ""
	}
	s := path.Join(parent, name)
	p.dirs[ino] = s
	return s
}

func (p *pathCache) nameIn(ctx context.Context, dir, ino uint64) string {
	cookie := uint64(0)
	for {
		ents, eof, _, err := p.fs.ReadDir(ctx, RootCred, dir, cookie, 1024, false)
		if err != nil {
			return ""
		}
		for _, e := range ents {
			if e.Ino == ino {
				return e.Name
			}
			cookie = e.Cookie
		}
		if eof || len(ents) == 0 {
			return ""
		}
	}
}

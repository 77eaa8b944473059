package replication

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
)

// Loss is one change an old source committed after its promoted replica's
// recovery point: the replica never received it.
type Loss struct {
	Seq   uint64    `json:"seq"`
	Time  time.Time `json:"time"`
	Op    string    `json:"op"`
	Paths []string  `json:"paths"` // as far as they can still be resolved on the old source
	Inos  []uint64  `json:"inodes"`
}

// LossReport lists the changes fs (an old source, fenced) committed after
// seq, at most max of them. complete is false when there were more, or when
// the journal no longer reaches back to seq+1 (then the list starts later).
func LossReport(ctx context.Context, fs *engine.FS, seq uint64, max int) (losses []Loss, complete bool, err error) {
	complete = true
	start, err := fs.JournalStart()
	if err != nil {
		return nil, false, err
	}
	from := seq + 1
	if start > from {
		from, complete = start, false
	}
	paths := &pathCache{fs: fs, dirs: map[uint64]string{engine.RootIno: "/"}}
	for from <= fs.DurableSeq() {
		recs, err := fs.ReadJournal(ctx, from, 256, 4<<20)
		if errors.Is(err, engine.ErrTruncated) {
			return losses, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if len(losses) == max {
				return losses, false, nil
			}
			losses = append(losses, Loss{Seq: r.Seq, Time: r.Time, Op: r.Op.Op, Inos: r.Op.Inos, Paths: paths.of(ctx, r.Op)})
		}
		from = recs[len(recs)-1].Seq + 1
	}
	return losses, complete, nil
}

// pathCache resolves the paths an operation summary names: a directory
// inode and a name (create, remove, rename: dir, [dir2,] ino), or just an
// inode (write, setattr).
type pathCache struct {
	fs   *engine.FS
	dirs map[uint64]string
}

func (p *pathCache) of(ctx context.Context, op engine.OpSummary) []string {
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
	if err != nil || a.Type != engine.TypeDir || a.Parent == 0 || a.Parent == ino {
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
		ents, eof, _, err := p.fs.ReadDir(ctx, engine.RootCred, dir, cookie, 1024, false)
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

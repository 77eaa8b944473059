package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The model test runs seeded random operation sequences against the engine
// and an in-memory tree model, comparing every outcome and the whole tree.

type mnode struct {
	ino      uint64
	typ      FileType
	mode     uint32
	data     []byte
	target   string
	children map[string]*mnode
	parent   *mnode
	nlink    int
}

type model struct{ root *mnode }

func newModel() *model {
	return &model{root: &mnode{ino: RootIno, typ: TypeDir, mode: 0o755, children: map[string]*mnode{}}}
}

// dirs lists every directory with its path, sorted.
func (m *model) dirs() []*mnode {
	var out []*mnode
	var walk func(n *mnode)
	walk = func(n *mnode) {
		out = append(out, n)
		names := slices.Sorted(mapKeys(n.children))
		for _, name := range names {
			if c := n.children[name]; c.typ == TypeDir {
				walk(c)
			}
		}
	}
	walk(m.root)
	return out
}

func mapKeys(m map[string]*mnode) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (m *model) dump() map[string]string {
	out := map[string]string{}
	var walk func(path string, n *mnode)
	walk = func(path string, n *mnode) {
		out[path] = describe(n.typ, n.mode, n.data, n.target, n.nlink)
		for name, c := range n.children {
			walk(path+"/"+name, c)
		}
	}
	walk("", m.root)
	return out
}

func describe(typ FileType, mode uint32, data []byte, target string, nlink int) string {
	switch typ {
	case TypeRegular:
		return fmt.Sprintf("file %o n%d %d %x", mode, nlink, len(data), sha256.Sum256(data))
	case TypeSymlink:
		return "symlink " + target
	case TypeDir:
		return fmt.Sprintf("dir %o", mode)
	}
	return fmt.Sprintf("%v %o", typ, mode)
}

func isAncestor(a, b *mnode) bool { // a is b or above b
	for n := b; n != nil; n = n.parent {
		if n == a {
			return true
		}
	}
	return false
}

// dumpFS walks a file system the way a client would (paged readdir,
// lookup, read) and describes every path.
func dumpFS(ctx context.Context, fs *FS) (map[string]string, error) {
	out := map[string]string{}
	var walk func(path string, ino uint64) error
	walk = func(path string, ino uint64) error {
		a, err := fs.GetAttr(ctx, ino)
		if err != nil {
			return fmt.Errorf("getattr %s: %w", path, err)
		}
		switch a.Type {
		case TypeRegular:
			data, eof, _, err := fs.Read(ctx, RootCred, ino, 0, int(a.Size)+10)
			if err != nil || !eof || uint64(len(data)) != a.Size {
				return fmt.Errorf("read %s: %d bytes eof %v: %v", path, len(data), eof, err)
			}
			out[path] = describe(a.Type, a.Mode, data, "", int(a.Nlink))
		case TypeSymlink:
			target, _, err := fs.Readlink(ctx, ino)
			if err != nil {
				return err
			}
			out[path] = describe(a.Type, a.Mode, nil, target, 1)
		case TypeDir:
			out[path] = describe(a.Type, a.Mode, nil, "", 0)
			var cookie uint64
			seen := map[string]bool{}
			for {
				ents, eof, _, err := fs.ReadDir(ctx, RootCred, ino, cookie, 3, true)
				if err != nil {
					return fmt.Errorf("readdir %s: %w", path, err)
				}
				for _, e := range ents {
					if seen[e.Name] {
						return fmt.Errorf("readdir %s: %q twice", path, e.Name)
					}
					seen[e.Name] = true
					l, err := fs.Lookup(ctx, RootCred, ino, e.Name)
					if err != nil || l.Ino != e.Ino || e.Attr == nil || e.Attr.Ino != e.Ino {
						return fmt.Errorf("lookup %s/%s: %+v %v", path, e.Name, l, err)
					}
					if err := walk(path+"/"+e.Name, e.Ino); err != nil {
						return err
					}
					cookie = e.Cookie
				}
				if eof {
					break
				}
			}
		default:
			out[path] = describe(a.Type, a.Mode, nil, "", 0)
		}
		return nil
	}
	return out, walk("", RootIno)
}

func diffDumps(want, got map[string]string) string {
	var b strings.Builder
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	n := 0
	for _, k := range sorted {
		if want[k] != got[k] {
			fmt.Fprintf(&b, "  %s: want %q got %q\n", k, want[k], got[k])
			if n++; n > 10 {
				break
			}
		}
	}
	return b.String()
}

// runner applies random operations to an engine file system and the model.
type runner struct {
	t    testing.TB
	rng  *rand.Rand
	fs   func() *FS
	m    *model
	bs   int
	step int
	log  []string
}

var modelNames = []string{"a", "b", "c", "d", "e"}

func (r *runner) pickDir() *mnode {
	ds := r.m.dirs()
	return ds[r.rng.IntN(len(ds))]
}

func (r *runner) pickEntry(d *mnode) (string, *mnode) {
	name := modelNames[r.rng.IntN(len(modelNames))]
	return name, d.children[name]
}

func (r *runner) pickFile() *mnode {
	var files []*mnode
	seen := map[*mnode]bool{}
	for _, d := range r.m.dirs() {
		for _, name := range slices.Sorted(mapKeys(d.children)) {
			if c := d.children[name]; c.typ == TypeRegular && !seen[c] {
				seen[c] = true
				files = append(files, c)
			}
		}
	}
	if len(files) == 0 {
		return nil
	}
	return files[r.rng.IntN(len(files))]
}

func (r *runner) randData(n int) []byte {
	b := make([]byte, n)
	switch r.rng.IntN(4) {
	case 0: // zeros (holes, zero detection)
	case 1: // repeated pattern (dedup)
		for i := range b {
			b[i] = byte(i % 7)
		}
	default:
		for i := range b {
			b[i] = byte(r.rng.Uint32())
		}
	}
	return b
}

func (r *runner) randLen() int {
	switch r.rng.IntN(5) {
	case 0:
		return 1 + r.rng.IntN(100)
	case 1:
		return 1 + r.rng.IntN(5000)
	case 2:
		return r.bs
	case 3:
		return r.bs*2 + r.rng.IntN(r.bs)
	default:
		return 1 + r.rng.IntN(r.bs)
	}
}

// do runs one random operation and checks the engine agrees with the model.
func (r *runner) do(ctx context.Context) {
	r.step++
	fs := r.fs()
	rng := r.rng
	var desc string
	var err, want error
	switch op := rng.IntN(100); {
	case op < 15:
		d := r.pickDir()
		name, ex := r.pickEntry(d)
		desc = fmt.Sprintf("create %d/%s", d.ino, name)
		var en Entry
		en, err = fs.Create(ctx, RootCred, d.ino, name, CreateGuarded, SetAttr{Mode: u32(0o644)}, 0)
		if ex != nil {
			want = ErrExist
		} else if err == nil {
			d.children[name] = &mnode{ino: en.Attr.Ino, typ: TypeRegular, mode: 0o644, nlink: 1}
		}
	case op < 22:
		d := r.pickDir()
		name, ex := r.pickEntry(d)
		desc = fmt.Sprintf("mkdir %d/%s", d.ino, name)
		var en Entry
		en, err = fs.Mkdir(ctx, RootCred, d.ino, name, SetAttr{Mode: u32(0o755)})
		if ex != nil {
			want = ErrExist
		} else if err == nil {
			d.children[name] = &mnode{ino: en.Attr.Ino, typ: TypeDir, mode: 0o755, children: map[string]*mnode{}, parent: d}
		}
	case op < 47:
		f := r.pickFile()
		if f == nil {
			return
		}
		var off int
		switch rng.IntN(4) {
		case 0:
			off = len(f.data) // append
		case 1:
			off = rng.IntN(len(f.data) + 1)
		case 2:
			off = rng.IntN(4) * r.bs
		default:
			off = len(f.data) + rng.IntN(2*r.bs)
		}
		data := r.randData(r.randLen())
		desc = fmt.Sprintf("write %d @%d+%d", f.ino, off, len(data))
		_, _, err = fs.Write(ctx, RootCred, f.ino, uint64(off), data)
		if err == nil {
			if end := off + len(data); end > len(f.data) {
				f.data = append(f.data, make([]byte, end-len(f.data))...)
			}
			copy(f.data[off:], data)
		}
	case op < 55:
		f := r.pickFile()
		if f == nil {
			return
		}
		var size int
		switch rng.IntN(3) {
		case 0:
			size = 0
		case 1:
			size = rng.IntN(len(f.data) + 1)
		default:
			size = len(f.data) + rng.IntN(3*r.bs)
		}
		desc = fmt.Sprintf("truncate %d to %d", f.ino, size)
		_, _, err = fs.SetAttr(ctx, RootCred, f.ino, SetAttr{Size: u64(uint64(size))}, nil)
		if err == nil {
			if size < len(f.data) {
				f.data = f.data[:size]
			} else {
				f.data = append(f.data, make([]byte, size-len(f.data))...)
			}
		}
	case op < 65:
		d := r.pickDir()
		name, ex := r.pickEntry(d)
		desc = fmt.Sprintf("remove %d/%s", d.ino, name)
		_, err = fs.Remove(ctx, RootCred, d.ino, name)
		switch {
		case ex == nil:
			want = ErrNotFound
		case ex.typ == TypeDir:
			want = ErrIsDir
		case err == nil:
			delete(d.children, name)
			ex.nlink--
		}
	case op < 70:
		d := r.pickDir()
		name, ex := r.pickEntry(d)
		desc = fmt.Sprintf("rmdir %d/%s", d.ino, name)
		_, err = fs.Rmdir(ctx, RootCred, d.ino, name)
		switch {
		case ex == nil:
			want = ErrNotFound
		case ex.typ != TypeDir:
			want = ErrNotDir
		case len(ex.children) > 0:
			want = ErrNotEmpty
		case err == nil:
			delete(d.children, name)
		}
	case op < 85:
		d1, d2 := r.pickDir(), r.pickDir()
		n1, src := r.pickEntry(d1)
		n2, dst := r.pickEntry(d2)
		desc = fmt.Sprintf("rename %d/%s %d/%s", d1.ino, n1, d2.ino, n2)
		_, _, err = fs.Rename(ctx, RootCred, d1.ino, n1, d2.ino, n2)
		switch {
		case src == nil:
			want = ErrNotFound
		case d1 == d2 && n1 == n2 || src == dst:
		case src.typ == TypeDir && d1 != d2 && isAncestor(src, d2):
			want = ErrInvalid
		case dst != nil && src.typ == TypeDir && dst.typ != TypeDir:
			want = ErrNotDir
		case dst != nil && src.typ != TypeDir && dst.typ == TypeDir:
			want = ErrIsDir
		case dst != nil && dst.typ == TypeDir && len(dst.children) > 0:
			want = ErrNotEmpty
		case err == nil:
			if dst != nil && dst.typ != TypeDir {
				dst.nlink--
			}
			delete(d1.children, n1)
			d2.children[n2] = src
			if src.typ == TypeDir {
				src.parent = d2
			}
		}
	case op < 91:
		f := r.pickFile()
		if f == nil {
			return
		}
		d := r.pickDir()
		name, ex := r.pickEntry(d)
		desc = fmt.Sprintf("link %d %d/%s", f.ino, d.ino, name)
		_, _, err = fs.Link(ctx, RootCred, f.ino, d.ino, name)
		if ex != nil {
			want = ErrExist
		} else if err == nil {
			d.children[name] = f
			f.nlink++
		}
	case op < 95:
		d := r.pickDir()
		name, ex := r.pickEntry(d)
		target := strings.Repeat("t", 1+rng.IntN(40))
		desc = fmt.Sprintf("symlink %d/%s", d.ino, name)
		var en Entry
		en, err = fs.Symlink(ctx, RootCred, d.ino, name, target, SetAttr{})
		if ex != nil {
			want = ErrExist
		} else if err == nil {
			d.children[name] = &mnode{ino: en.Attr.Ino, typ: TypeSymlink, mode: 0o777, target: target, nlink: 1}
		}
	default:
		_, ex := r.pickEntry(r.pickDir())
		if ex == nil {
			return
		}
		mode := uint32(rng.IntN(0o1000))
		desc = fmt.Sprintf("chmod %d %o", ex.ino, mode)
		_, _, err = fs.SetAttr(ctx, RootCred, ex.ino, SetAttr{Mode: &mode}, nil)
		if err == nil {
			ex.mode = mode
		}
	}
	r.log = append(r.log, desc)
	if len(r.log) > 30 {
		r.log = r.log[1:]
	}
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		r.t.Fatalf("step %d %s: error %v, model wants %v\nrecent ops:\n  %s", r.step, desc, err, want, strings.Join(r.log, "\n  "))
	}
}

func (r *runner) check(ctx context.Context) {
	r.t.Helper()
	got, err := dumpFS(ctx, r.fs())
	if err != nil {
		r.t.Fatalf("step %d: dump: %v", r.step, err)
	}
	if d := diffDumps(r.m.dump(), got); d != "" {
		r.t.Fatalf("step %d: engine differs from model:\n%s\nrecent ops:\n  %s", r.step, d, strings.Join(r.log, "\n  "))
	}
	if err := r.fs().Replica().Verify(ctx, true); err != nil {
		r.t.Fatalf("step %d: verify: %v", r.step, err)
	}
}

func modelOpts(o *Options) {
	o.BatchEntries = 4 // exercise bounded batches (zombies, huge truncates)
	o.InlineMax = 2048
}

var modelCheckEvery = flag.Int("model.check", 25, "check the whole tree every this many steps")

func TestModel(t *testing.T) {
	ctx := context.Background()
	seeds := 12
	steps := 250
	if testing.Short() {
		seeds, steps = 3, 150
	}
	for i := range seeds {
		seed := uint64(i + 1)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Logf("seed %d", seed)
			v := newEnv(t, modelOpts)
			v.mkfs("m")
			r := &runner{t: t, rng: rand.New(rand.NewPCG(seed, 99)), fs: func() *FS { return v.fs("m") }, m: newModel(), bs: MinBlockSize}
			for s := range steps {
				r.do(ctx)
				if s%*modelCheckEvery == *modelCheckEvery-1 {
					r.check(ctx)
				}
				if s%100 == 99 {
					v.reopen()
					r.check(ctx)
				}
			}
			if err := r.fs().mergeExtents(ctx); err != nil {
				t.Fatal(err)
			}
			r.check(ctx)
			if _, err := v.e.CollectGarbage(ctx); err != nil {
				t.Fatal(err)
			}
			r.check(ctx)
		})
	}
}

var _ = bytes.Equal

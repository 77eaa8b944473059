package s3blocks

import (
	"cmp"
	"container/list"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Cache is an on-disk cache of objects, bounded in bytes (LRU). It is safe
// for concurrent use.
type Cache struct {
	dir string
	max int64

	mu    sync.Mutex // guards the fields below
	size  int64
	ll    *list.List // front = most recently used
	items map[string]*list.Element

	hits, misses uint64
}

type cacheItem struct {
	name string
	size int64
}

// OpenCache opens (creating) a cache directory holding at most maxBytes;
// files already there are kept, oldest first out.
func OpenCache(dir string, maxBytes int64) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	c := &Cache{dir: dir, max: maxBytes, ll: list.New(), items: map[string]*list.Element{}}
	type found struct {
		name  string
		size  int64
		mtime int64
	}
	var all []found
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasPrefix(d.Name(), "tmp-") {
			return os.Remove(p)
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		all = append(all, found{filepath.ToSlash(rel), info.Size(), info.ModTime().UnixNano()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Newest first: the oldest end up at the back, first out.
	slices.SortFunc(all, func(a, b found) int { return cmp.Compare(b.mtime, a.mtime) })
	for _, f := range all {
		c.items[f.name] = c.ll.PushBack(&cacheItem{f.name, f.size})
		c.size += f.size
	}
	c.mu.Lock()
	c.evictLocked()
	c.mu.Unlock()
	return c, nil
}

func (c *Cache) path(name string) string { return filepath.Join(c.dir, filepath.FromSlash(name)) }

// get returns the cached bytes of name.
func (c *Cache) get(name string) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	e, ok := c.items[name]
	if ok {
		c.ll.MoveToFront(e)
		c.hits++
	} else {
		c.misses++
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	b, err := os.ReadFile(c.path(name))
	if err != nil {
		c.drop(name)
		return nil, false
	}
	return b, true
}

// put stores parts (concatenated) under name.
func (c *Cache) put(name string, parts ...[]byte) {
	if c == nil {
		return
	}
	var size int64
	for _, p := range parts {
		size += int64(len(p))
	}
	if size > c.max {
		return
	}
	c.mu.Lock()
	_, ok := c.items[name]
	c.mu.Unlock()
	if ok {
		return
	}
	p := c.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return
	}
	var r [8]byte
	_, _ = rand.Read(r[:])
	tmp := filepath.Join(filepath.Dir(p), "tmp-"+hex.EncodeToString(r[:]))
	f, err := os.Create(tmp)
	if err != nil {
		return
	}
	for _, part := range parts {
		if _, err = f.Write(part); err != nil {
			break
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[name]; ok {
		return
	}
	c.items[name] = c.ll.PushFront(&cacheItem{name, size})
	c.size += size
	c.evictLocked()
}

// drop removes name from the cache.
func (c *Cache) drop(name string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	e, ok := c.items[name]
	if ok {
		c.ll.Remove(e)
		delete(c.items, name)
		c.size -= e.Value.(*cacheItem).size
	}
	c.mu.Unlock()
	if err := os.Remove(c.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return
	}
}

func (c *Cache) evictLocked() {
	for c.size > c.max && c.ll.Len() > 0 {
		e := c.ll.Back()
		it := e.Value.(*cacheItem)
		c.ll.Remove(e)
		delete(c.items, it.name)
		c.size -= it.size
		_ = os.Remove(c.path(it.name))
	}
}

// CacheStats are a cache's counters.
type CacheStats struct {
	Bytes, MaxBytes int64
	Entries         int
	Hits, Misses    uint64
}

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{Bytes: c.size, MaxBytes: c.max, Entries: c.ll.Len(), Hits: c.hits, Misses: c.misses}
}

package engine

import (
	"bytes"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// prefixReader presents the keys of base under prefix as relative keys.
type prefixReader struct {
	base   kv.Reader
	prefix []byte
}

func (p prefixReader) abs(rel []byte) []byte {
	k := make([]byte, 0, len(p.prefix)+len(rel))
	return append(append(k, p.prefix...), rel...)
}

func (p prefixReader) Get(rel []byte) ([]byte, error) { return p.base.Get(p.abs(rel)) }

func (p prefixReader) NewIter(lo, hi []byte) (kv.Iterator, error) {
	alo := p.abs(lo)
	var ahi []byte
	if hi == nil {
		ahi = upper(p.prefix)
	} else {
		ahi = p.abs(hi)
	}
	it, err := p.base.NewIter(alo, ahi)
	if err != nil {
		return nil, err
	}
	return &prefixIter{Iterator: it, p: p}, nil
}

type prefixIter struct {
	kv.Iterator
	p prefixReader
}

func (it *prefixIter) Key() []byte {
	k := it.Iterator.Key()
	if !bytes.HasPrefix(k, it.p.prefix) {
		return nil
	}
	return k[len(it.p.prefix):]
}

// AppendValue appends the value through the wrapped iterator (kv.ValueAppender).
func (it *prefixIter) AppendValue(dst []byte) ([]byte, error) {
	return kv.AppendValue(it.Iterator, dst)
}

func (it *prefixIter) SeekGE(rel []byte) bool { return it.Iterator.SeekGE(it.p.abs(rel)) }
func (it *prefixIter) SeekLT(rel []byte) bool { return it.Iterator.SeekLT(it.p.abs(rel)) }

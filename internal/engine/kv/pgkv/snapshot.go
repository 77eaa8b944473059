package pgkv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// snapshot is a REPEATABLE READ READ ONLY transaction on one connection.
// Its methods may be called concurrently: queries take turns on the
// connection.
type snapshot struct {
	s   *Store
	err error // set when the snapshot could not be opened

	mu     sync.Mutex // guards the fields below
	conn   *pgxpool.Conn
	closed bool
}

func (s *Store) newSnapshot() *snapshot {
	if s.closed.Load() {
		return &snapshot{s: s, err: kv.ErrClosed}
	}
	var conn *pgxpool.Conn
	err := s.retry(s.ctx, "snapshot", func(ctx context.Context) error {
		c, err := s.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		// The snapshot is taken by the first statement after BEGIN:
		// both go in one round trip.
		if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1"); err != nil {
			c.Release() // not idle: the pool discards it
			return err
		}
		conn = c
		return nil
	})
	if err != nil {
		return &snapshot{s: s, err: s.mapErr(err)}
	}
	return &snapshot{s: s, conn: conn}
}

func (sn *snapshot) usable() error {
	switch {
	case sn.err != nil:
		return sn.err
	case sn.closed:
		return kv.ErrClosed
	}
	return nil
}

func (sn *snapshot) Get(key []byte) ([]byte, error) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if err := sn.usable(); err != nil {
		return nil, err
	}
	var v []byte
	err := sn.conn.QueryRow(sn.s.ctx, sn.s.q.get, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, kv.ErrNotFound
	}
	if err != nil {
		return nil, sn.fail(err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func (sn *snapshot) fail(err error) error {
	if transient(err) {
		return fmt.Errorf("%w: snapshot lost: %w", ErrUnavailable, err)
	}
	return sn.s.mapErr(err)
}

type row struct{ k, v []byte }

// query runs a page query in the snapshot.
func (sn *snapshot) query(sql string, args ...any) ([]row, error) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if err := sn.usable(); err != nil {
		return nil, err
	}
	rs, err := sn.conn.Query(sn.s.ctx, sql, args...)
	if err != nil {
		return nil, sn.fail(err)
	}
	var out []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.k, &r.v); err != nil {
			rs.Close()
			return nil, sn.fail(err)
		}
		if r.v == nil {
			r.v = []byte{}
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, sn.fail(err)
	}
	return out, nil
}

func (sn *snapshot) NewIter(lo, hi []byte) (kv.Iterator, error) {
	if err := sn.usable(); err != nil {
		return nil, err
	}
	if lo == nil {
		lo = []byte{}
	}
	return &iter{sn: sn, lo: bytes.Clone(lo), hi: bytes.Clone(hi), page: firstPage}, nil
}

func (sn *snapshot) Close() error {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.closed || sn.conn == nil {
		sn.closed = true
		return nil
	}
	sn.closed = true
	// ROLLBACK returns the connection idle; if it fails the pool drops it.
	_, _ = sn.conn.Exec(context.Background(), "ROLLBACK")
	sn.conn.Release()
	sn.conn = nil
	return nil
}

// Page sizes: the first page is small (most scans are short), later ones
// grow, bounded by pageBytes of values.
const (
	firstPage = 64
	maxPage   = 1024
	pageBytes = 4 << 20
)

// iter walks [lo, hi) of a snapshot through a window of contiguous rows.
type iter struct {
	sn     *snapshot
	owned  *snapshot // closed with the iterator (Store.NewIter)
	lo, hi []byte    // hi nil: no upper bound

	rows         []row // ascending, contiguous in the keyspace
	loEnd, hiEnd bool  // no key in bounds before rows[0] / after the last row
	pos          int
	valid        bool
	err          error
	page         int
}

// fetchFwd loads the window starting at the first key >= from.
func (it *iter) fetchFwd(from []byte) bool {
	var rows []row
	var err error
	if it.hi == nil {
		rows, err = it.sn.query(it.sn.s.q.fwd, from, it.page)
	} else {
		rows, err = it.sn.query(it.sn.s.q.fwdTo, from, it.hi, it.page)
	}
	if err != nil {
		return it.fail(err)
	}
	it.hiEnd = len(rows) < it.page
	it.loEnd = bytes.Equal(from, it.lo)
	it.grow(rows)
	it.rows, it.pos = rows, 0
	it.valid = len(rows) > 0
	return it.valid
}

// fetchBack loads the window ending at the last key < before (nil: hi).
func (it *iter) fetchBack(before []byte) bool {
	var rows []row
	var err error
	if before == nil {
		rows, err = it.sn.query(it.sn.s.q.back, it.lo, it.page)
	} else {
		rows, err = it.sn.query(it.sn.s.q.backFrom, it.lo, before, it.page)
	}
	if err != nil {
		return it.fail(err)
	}
	it.loEnd = len(rows) < it.page
	it.hiEnd = before == nil || (it.hi != nil && bytes.Equal(before, it.hi))
	it.grow(rows)
	for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
		rows[i], rows[j] = rows[j], rows[i]
	}
	it.rows, it.pos = rows, len(rows)-1
	it.valid = len(rows) > 0
	return it.valid
}

// grow sizes the next page from this one's values.
func (it *iter) grow(rows []row) {
	n := 0
	for _, r := range rows {
		n += len(r.k) + len(r.v)
	}
	next := min(it.page*2, maxPage)
	if n > 0 && len(rows) > 0 {
		next = min(next, max(8, pageBytes/(n/len(rows)+1)))
	}
	it.page = next
}

func (it *iter) fail(err error) bool {
	it.err, it.valid, it.rows = err, false, nil
	return false
}

func (it *iter) clampLo(k []byte) []byte {
	if bytes.Compare(k, it.lo) < 0 {
		return it.lo
	}
	return k
}

func (it *iter) First() bool { return it.fetchFwd(it.lo) }
func (it *iter) Last() bool  { return it.fetchBack(it.hi) }

func (it *iter) SeekGE(k []byte) bool {
	k = it.clampLo(k)
	if n := len(it.rows); n > 0 && it.err == nil &&
		(bytes.Compare(it.rows[0].k, k) <= 0 || it.loEnd) && bytes.Compare(k, it.rows[n-1].k) <= 0 {
		it.pos = sort.Search(n, func(i int) bool { return bytes.Compare(it.rows[i].k, k) >= 0 })
		it.valid = true
		return true
	}
	return it.fetchFwd(k)
}

func (it *iter) SeekLT(k []byte) bool {
	if k == nil {
		it.valid = false
		return false
	}
	if it.hi != nil && bytes.Compare(k, it.hi) > 0 {
		k = it.hi
	}
	if n := len(it.rows); n > 0 && it.err == nil &&
		bytes.Compare(it.rows[0].k, k) < 0 && (bytes.Compare(k, it.rows[n-1].k) <= 0 || it.hiEnd) {
		it.pos = sort.Search(n, func(i int) bool { return bytes.Compare(it.rows[i].k, k) >= 0 }) - 1
		it.valid = true
		return true
	}
	return it.fetchBack(k)
}

func (it *iter) Next() bool {
	if !it.valid {
		return false
	}
	if it.pos+1 < len(it.rows) {
		it.pos++
		return true
	}
	if it.hiEnd {
		it.valid = false
		return false
	}
	return it.fetchFwd(append(bytes.Clone(it.rows[it.pos].k), 0))
}

func (it *iter) Prev() bool {
	if !it.valid {
		return false
	}
	if it.pos > 0 {
		it.pos--
		return true
	}
	if it.loEnd {
		it.valid = false
		return false
	}
	return it.fetchBack(bytes.Clone(it.rows[0].k))
}

func (it *iter) Valid() bool { return it.valid }

func (it *iter) Key() []byte {
	if !it.valid {
		return nil
	}
	return it.rows[it.pos].k
}

func (it *iter) Value() ([]byte, error) {
	if !it.valid {
		return nil, nil
	}
	return it.rows[it.pos].v, nil
}

func (it *iter) Error() error { return it.err }

func (it *iter) Close() error {
	it.valid, it.rows = false, nil
	if it.owned != nil {
		err := it.owned.Close()
		it.owned = nil
		return err
	}
	return nil
}

// Package faultproxy is a TCP proxy that misbehaves on demand: it delays
// data (latency), limits its rate (bandwidth), resets connections and
// partitions the network (holds data and answers nothing, like a link
// that went dark). Tests put it between two regions' replication
// endpoints. Latency and bandwidth are independent, as on a real link: a
// delay holds each piece of data back for its time while the next pieces
// are read and held too, so it does not lower the throughput; a
// bandwidth spaces the pieces out and does not add to the delay.
package faultproxy

import (
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections from its listener to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	mu          sync.Mutex    // guards the fields below
	delay       time.Duration // latency of each direction
	replyDelay  time.Duration // more latency of the target → client direction
	bandwidth   int64         // bytes per second and direction; 0: unlimited
	piece       int           // bytes read (and delayed) at a time; 0: 64 KiB
	partitioned bool
	corrupt     int    // chunks to damage (client → target, past the first 4 KiB)
	recorded    []byte // the first 64 KiB a client sent on the last connection
	conns       map[*pair]struct{}
	closed      bool
	wake        chan struct{} // closed and replaced when the partition heals

	wg sync.WaitGroup
}

type pair struct {
	a, b net.Conn
	mu   sync.Mutex // guards open
	open int        // directions still forwarding

	once sync.Once
	done chan struct{} // closed with the connections: held data is dropped
}

func newPair(a, b net.Conn) *pair {
	return &pair{a: a, b: b, open: 2, done: make(chan struct{})}
}

func (p *pair) close() {
	p.once.Do(func() { close(p.done) })
	p.a.Close()
	p.b.Close()
}

// New listens on addr (e.g. "127.0.0.1:0") and forwards to target.
func New(addr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[*pair]struct{}{}, wake: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDelay gives each direction a latency of d: each piece of data
// reaches the other side d after it was read, in order, while the next
// pieces are read and held meanwhile (the delay does not add up over
// pieces: it does not lower the throughput; SetBandwidth does). A change
// applies to the data read from then on; raised in steps smaller than
// the pieces' spacing, no piece waits for its predecessor. Partition
// holds data at its reading; a piece read before it is still delivered
// when due.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// SetReplyDelay gives the way back (target → client) a latency of d on
// top of SetDelay's, as SetDelay does (a slow or congested path, not a
// slow peer).
func (p *Proxy) SetReplyDelay(d time.Duration) {
	p.mu.Lock()
	p.replyDelay = d
	p.mu.Unlock()
}

// SetBandwidth limits each direction to bytesPerSecond (0: unlimited):
// a piece of n bytes leaves n/bytesPerSecond after the one before it (or
// after its reading, when the link was idle), then takes the delay. What
// the proxy holds is bounded (a 64-piece queue per direction): a sender
// past it waits, as on a full TCP window.
func (p *Proxy) SetBandwidth(bytesPerSecond int64) {
	p.mu.Lock()
	p.bandwidth = bytesPerSecond
	p.mu.Unlock()
}

// SetPieceBytes makes each piece of data (what is read, held and
// delivered at once) at most n bytes; 0 restores the default of 64 KiB.
// Smaller pieces pace a bandwidth more evenly.
func (p *Proxy) SetPieceBytes(n int) {
	p.mu.Lock()
	p.piece = n
	p.mu.Unlock()
}

// CorruptNext flips a bit in the next piece of data a client sends past
// the first 4 KiB of its connection (so past the HTTP request head).
func (p *Proxy) CorruptNext() {
	p.mu.Lock()
	p.corrupt++
	p.mu.Unlock()
}

// Recorded returns the first 64 KiB a client sent on the newest
// connection, for replaying them.
func (p *Proxy) Recorded() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.recorded...)
}

// Partition holds all data (in both directions, on every connection) and
// forwards nothing until Heal; connections are neither refused nor closed,
// and a side's close reaches the other only after Heal.
func (p *Proxy) Partition() {
	p.mu.Lock()
	p.partitioned = true
	p.mu.Unlock()
}

// Heal ends a partition.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.partitioned = false
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
}

// Reset closes every open connection abruptly.
func (p *Proxy) Reset() {
	p.mu.Lock()
	for c := range p.conns {
		if tc, ok := c.a.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.close()
	}
	p.mu.Unlock()
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.close()
	}
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		t, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		pr := newPair(c, t)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			pr.close()
			return
		}
		p.conns[pr] = struct{}{}
		p.mu.Unlock()
		p.mu.Lock()
		p.recorded = nil
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pr, c, t, true)
		go p.pipe(pr, t, c, false)
	}
}

// link is what a direction does to the data it carries.
type link struct {
	delay     time.Duration
	bandwidth int64 // bytes per second; 0: unlimited
}

// gate waits while partitioned and returns the direction's link; false
// when the proxy is closing.
func (p *Proxy) gate(fromClient bool) (link, bool) {
	for {
		p.mu.Lock()
		part, closed, wake := p.partitioned, p.closed, p.wake
		l := link{delay: p.delay, bandwidth: p.bandwidth}
		if !fromClient {
			l.delay += p.replyDelay
		}
		p.mu.Unlock()
		if closed {
			return link{}, false
		}
		if !part {
			return l, true
		}
		<-wake
	}
}

func (p *Proxy) pipe(pr *pair, from, to net.Conn, fromClient bool) {
	defer p.wg.Done()
	halfClosed := false
	defer func() {
		pr.mu.Lock()
		pr.open--
		last := pr.open == 0
		pr.mu.Unlock()
		if !halfClosed || last {
			pr.close()
		}
		if last || !halfClosed {
			p.mu.Lock()
			delete(p.conns, pr)
			p.mu.Unlock()
		}
	}()
	out := newLatent(to, pr.done) // delivers each piece when due
	defer out.flush()
	// The target is gone (it reset the connection): what it sent before
	// is still on its way back to the client, and the other direction
	// delivers it before it closes the pair. A path holds no data back
	// because a later packet was refused.
	targetGone := func() {
		if fromClient {
			to.Close()
			halfClosed = true
		}
	}
	buf := make([]byte, 64<<10)
	sent := 0
	var free time.Time // when the link has sent what it holds (SetBandwidth)
	for {
		p.mu.Lock()
		piece := p.piece
		p.mu.Unlock()
		if piece <= 0 || piece > len(buf) {
			piece = len(buf)
		}
		n, err := from.Read(buf[:piece])
		if n > 0 {
			readAt := time.Now()
			l, ok := p.gate(fromClient)
			if !ok {
				return
			}
			if fromClient {
				p.mu.Lock()
				if len(p.recorded) < 64<<10 {
					p.recorded = append(p.recorded, buf[:min(n, 64<<10-len(p.recorded))]...)
				}
				if p.corrupt > 0 && sent+n > 4096 {
					i := max(4096-sent, 0) + (n-max(4096-sent, 0))/2
					buf[i] ^= 0x20
					p.corrupt--
				}
				p.mu.Unlock()
				sent += n
			}
			leaves := readAt
			if l.bandwidth > 0 {
				if free.After(leaves) {
					leaves = free
				}
				leaves = leaves.Add(time.Duration(int64(n) * int64(time.Second) / l.bandwidth))
				free = leaves
			}
			if werr := out.send(buf[:n], leaves.Add(l.delay)); werr != nil {
				targetGone()
				return
			}
		}
		if err != nil {
			// A partition holds the end of a connection too (a close
			// crosses no dark link): the other side learns of it once
			// the partition heals, after the data before it.
			if _, ok := p.gate(fromClient); !ok {
				return
			}
			if out.flush() != nil {
				targetGone()
				return // what was held did not reach the other side
			}
			if err == io.EOF {
				if tc, ok := to.(*net.TCPConn); ok && tc.CloseWrite() == nil {
					halfClosed = true
				}
			}
			return
		}
	}
}

// latent writes pieces of data to a connection, each once its time is
// due, in order, from a goroutine of its own.
type latent struct {
	q      chan latentPiece
	done   chan struct{}
	mu     sync.Mutex // guards err and closed
	err    error      // the first failed write
	closed bool
}

type latentPiece struct {
	b   []byte
	due time.Time
}

// newLatent starts a latent writer to to; once stop is closed (the
// connections are), what it holds is dropped without waiting for its
// time.
func newLatent(to net.Conn, stop <-chan struct{}) *latent {
	l := &latent{q: make(chan latentPiece, 64), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		var t *time.Timer
		for pc := range l.q {
			l.mu.Lock()
			failed := l.err != nil
			l.mu.Unlock()
			if failed {
				continue // drained, not written
			}
			if wait := time.Until(pc.due); wait > 0 {
				if t == nil {
					t = time.NewTimer(wait)
				} else {
					t.Reset(wait)
				}
				select {
				case <-t.C:
				case <-stop:
					l.mu.Lock()
					l.err = net.ErrClosed
					l.mu.Unlock()
					continue
				}
			}
			if _, err := to.Write(pc.b); err != nil {
				l.mu.Lock()
				l.err = err
				l.mu.Unlock()
			}
		}
		if t != nil {
			t.Stop()
		}
	}()
	return l
}

// send queues a copy of b for due; it fails once a write has failed.
func (l *latent) send(b []byte, due time.Time) error {
	l.mu.Lock()
	err := l.err
	l.mu.Unlock()
	if err != nil {
		return err
	}
	l.q <- latentPiece{b: append([]byte(nil), b...), due: due}
	return nil
}

// flush waits until everything queued is written (or a write failed) and
// returns the first write error. Nothing is sent after it.
func (l *latent) flush() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.q)
	}
	l.mu.Unlock()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

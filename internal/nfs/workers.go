package nfs

import (
	"sync"
	"time"
)

// workerIdle is how long a worker waits for its next function before it
// ends.
const workerIdle = 5 * time.Second

// workers runs functions on kept goroutines: an idle worker takes the
// next function, a new worker starts when none is idle, and a worker ends
// after workerIdle without work or once done is closed. A goroutine per
// function grew its stack to the depth of the engine's and Pebble's calls
// every time (runtime.newstack and copystack: 5 % of the server's CPU in
// the create probe of issue 16, 9 % serving cached blocks). A connection
// runs its requests on workers, the read-ahead its prefetches.
type workers struct {
	work chan func()
	done <-chan struct{}
	wg   sync.WaitGroup // the workers running
}

// init readies w; its workers end once done is closed.
func (w *workers) init(done <-chan struct{}) {
	w.work, w.done = make(chan func()), done
}

// run runs f on an idle worker, or on a new one.
func (w *workers) run(f func()) {
	select {
	case w.work <- f:
	default:
		w.wg.Add(1)
		go w.loop(f)
	}
}

func (w *workers) loop(f func()) {
	defer w.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(workerIdle)
		select {
		case f = <-w.work:
		case <-idle.C:
			return
		case <-w.done:
			return
		}
	}
}

// wait waits for the workers to end (after done is closed).
func (w *workers) wait() { w.wg.Wait() }

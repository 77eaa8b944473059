package fuse

import "sync"

// maxPendingNotes bounds the entry notifications waiting to be sent; past
// it more are dropped (the kernel then looks the name up again when its
// entry expires, as without the notification).
const maxPendingNotes = 1024

// notifier tells the kernel to look names up again (entry
// notifications), off the requests that ask for it: a notification sent
// while the kernel waits for that request's reply can wait for the
// directory's lock, which the request may hold. One goroutine at a time
// sends them, while any wait, in order; a name already waiting is not
// queued twice. (A goroutine per notification piled up behind a
// directory's lock under a burst of GETATTRs of renamed-over files.)
type notifier struct {
	// send sends one notification (tests replace it before use).
	send func(dir *node, name string)

	mu      sync.Mutex // guards the fields below
	queue   []note
	waiting map[note]bool
	running bool // a goroutine sends the queue
	dropped uint64
}

type note struct {
	dir  *node
	name string
}

func newNotifier() *notifier {
	return &notifier{
		send:    func(dir *node, name string) { dir.NotifyEntry(name) },
		waiting: map[note]bool{},
	}
}

// entry has the kernel look name up in dir again, soon.
func (q *notifier) entry(dir *node, name string) {
	k := note{dir, name}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.waiting[k] {
		return
	}
	if len(q.queue) >= maxPendingNotes {
		q.dropped++
		return
	}
	q.waiting[k] = true
	q.queue = append(q.queue, k)
	if !q.running {
		q.running = true
		go q.run()
	}
}

// run sends the queued notifications until none is left.
func (q *notifier) run() {
	for {
		q.mu.Lock()
		if len(q.queue) == 0 {
			q.running = false
			q.queue = nil
			q.mu.Unlock()
			return
		}
		k := q.queue[0]
		q.queue[0] = note{}
		q.queue = q.queue[1:]
		// A request for the name from now on is sent again: it may
		// follow what the kernel looks up after this one.
		delete(q.waiting, k)
		q.mu.Unlock()
		q.send(k.dir, k.name)
	}
}

package disk

import "golang.org/x/sys/unix"

// Held is a file of an OS kept open to be read whole again and again
// without opening it by name: a block file, which never changes once
// written (blocks.Dir keeps a bounded set of them, blocks.Descs). Its
// size is the one it had when it was held, so a read is one pread (or
// one raw preadv2 and what the page cache lacked), without the openat,
// fstat and close of ReadWhole. A Held reads the file it was opened
// on even after that file's name was removed or replaced: its holder
// closes it before or when the name goes.
//
// A Held is safe for concurrent reads; Close must follow the last one.
type Held struct {
	o    *OS
	fd   int // the writer's descriptor (File.Hold), or one opened by OpenHeld
	size int64
	name string
}

// OpenHeld opens file name to read it whole later (Held.ReadWhole):
// openat and fstat, as ReadWhole's first two calls.
func (o *OS) OpenHeld(name string) (*Held, error) {
	fd, size, err := o.openSized(name)
	if err != nil {
		return nil, err
	}
	return &Held{o: o, fd: fd, size: size, name: name}, nil
}

// Hold turns the file, written whole and synced, into a Held of its
// size bytes, named name once renamed: the caller no longer Closes the
// File (Held.Close does). Files of OS.Create are opened for reading too,
// without access-time updates where the process owns them (O_NOATIME).
func (f *osFile) Hold(name string, size int64) *Held {
	// The Held's now (-1, failing its reads with EBADF, when the file
	// was closed).
	fd, _ := f.take("hold")
	return &Held{o: f.o, fd: fd, size: size, name: name}
}

// ReadWhole reads the held file whole into buf[:size] when its size fits
// cap(buf) (inBuf true), else into a new buffer; raw as ReadWholeRaw's
// (the data with a raw preadv2 while the page cache holds it).
func (h *Held) ReadWhole(buf []byte, raw bool) ([]byte, bool, error) {
	return h.o.readFd(h.fd, h.size, h.name, buf, raw)
}

// Close closes the file.
func (h *Held) Close() error { return unix.Close(h.fd) }

package replication

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// TestStreamWindow: the replication server lets a source have more than
// a blocks frame on its way on a stream, and two streams' worth on the
// connection. With net/http's defaults (1 MiB each) an initial sync's
// source waited for the destination's window updates most of the time
// (in-process trace: 1.7 s of a 2.5 s sync of 512 MiB in
// awaitFlowControl, while the destination's frame reader waited for
// data). Read from the SETTINGS and WINDOW_UPDATE frames the server sends
// to a cleartext HTTP/2 client.
func TestStreamWindow(t *testing.T) {
	r := newRegion(t, "us-east-1")
	r.startNode(map[string]Peer{r.name: {URL: "http://" + r.addr, Secret: testSecret}})
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The client preface and an empty SETTINGS frame.
	if _, err := io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		t.Fatal(err)
	}
	// The server's first frames: its SETTINGS, the ack of ours, and a
	// WINDOW_UPDATE of the connection when its window is above the
	// default (net/http sends one from 1 MiB on). A server that sends
	// none is given a few seconds.
	const defaultWindow = 65535 // RFC 9113 §6.9.2
	stream, conn := int64(-1), int64(defaultWindow)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for updated := false; stream < 0 || !updated; {
		var h [9]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() && stream >= 0 {
				break // no WINDOW_UPDATE: the default
			}
			t.Fatalf("reading the server's first frames: %v", err)
		}
		n := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
		typ, flags, id := h[3], h[4], binary.BigEndian.Uint32(h[5:])&(1<<31-1)
		p := make([]byte, n)
		if _, err := io.ReadFull(c, p); err != nil {
			t.Fatal(err)
		}
		switch {
		case typ == 0x4 && flags&0x1 == 0: // SETTINGS (not an ack)
			stream = defaultWindow
			for i := 0; i+6 <= len(p); i += 6 {
				if binary.BigEndian.Uint16(p[i:]) == 0x4 { // INITIAL_WINDOW_SIZE
					stream = int64(binary.BigEndian.Uint32(p[i+2:]))
				}
			}
		case typ == 0x8 && id == 0 && len(p) == 4: // WINDOW_UPDATE of the connection
			conn += int64(binary.BigEndian.Uint32(p) & (1<<31 - 1))
			updated = true
		}
	}
	if stream < 2*maxBlocksFrame {
		t.Errorf("stream window %d bytes, want at least two blocks frames (%d)", stream, 2*maxBlocksFrame)
	}
	if conn < 2*stream {
		t.Errorf("connection window %d bytes, want at least two streams' (%d)", conn, 2*stream)
	}
}

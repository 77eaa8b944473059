package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
)

// notifySocketEnv names the variable through which systemd hands a
// Type=notify service its notification socket (sd_notify(3)).
const notifySocketEnv = "NOTIFY_SOCKET"

// sdNotify sends state ("READY=1", "STOPPING=1", …) to the service
// manager's notification socket, the datagram socket $NOTIFY_SOCKET names
// (a leading '@' is an abstract address). Without the variable, outside
// systemd, it does nothing.
func sdNotify(state string) error {
	path := os.Getenv(notifySocketEnv)
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("%s: %w", notifySocketEnv, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("%s: %w", notifySocketEnv, err)
	}
	return nil
}

// notifyReady tells systemd that the service is up (every listener bound and
// serving) and returns the function that tells it the service is stopping.
// Errors are logged: a service manager that cannot be told is not a reason
// to stop serving.
func notifyReady(log *slog.Logger, status string) (stopping func()) {
	if err := sdNotify("READY=1\nSTATUS=" + status); err != nil {
		log.Warn("cannot tell systemd the service is ready", "err", err)
		return func() {}
	}
	if os.Getenv(notifySocketEnv) == "" {
		return func() {}
	}
	return func() {
		if err := sdNotify("STOPPING=1"); err != nil {
			log.Warn("cannot tell systemd the service is stopping", "err", err)
		}
	}
}

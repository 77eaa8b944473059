package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/replication"
)

// A region starts in an order that explains a mistake before anything is
// created: (1) every file the config names is read (regionFiles), (2) the
// API and replication listeners are bound (regionListeners), and only then
// (3) the data directory is created and locked and the store opened.

// regionFiles is what a region reads from the files its config names:
// credentials, KMS keys, pair secrets and TLS material.
type regionFiles struct {
	access        map[string]string // access key id → secret
	keyring       *kms.Keyring      // nil when no key is configured
	apiTLS        *tls.Config
	peers         map[string]replication.Peer // by region name
	replServerTLS *tls.Config
	replClientTLS *tls.Config
	selfSecret    []byte // nil: generated in the data directory
}

// filesError is a region's start-up failure on a file its config names.
type filesError struct{ err error }

func (e *filesError) Error() string { return e.err.Error() }
func (e *filesError) Unwrap() error { return e.err }

// loadRegionFiles reads every file cfg names; it creates nothing.
func loadRegionFiles(cfg *config.Config) (*regionFiles, error) {
	f, err := readRegionFiles(cfg)
	if err != nil {
		return nil, &filesError{err}
	}
	return f, nil
}

func readRegionFiles(cfg *config.Config) (*regionFiles, error) {
	f := &regionFiles{peers: map[string]replication.Peer{}}
	var err error
	if f.access, err = config.Secrets(cfg.Credentials); err != nil {
		return nil, err
	}
	if f.keyring, err = loadKeyring(cfg.KMSKeys); err != nil {
		return nil, err
	}
	if t := cfg.API.TLS; t != nil {
		if f.apiTLS, err = serverTLS(t); err != nil {
			return nil, fmt.Errorf("api.tls: %w", err)
		}
	}
	if cfg.Replication.Listen == "" {
		return f, nil
	}
	for _, p := range cfg.Peers {
		secret, err := p.PeerSecret()
		if err != nil {
			return nil, err
		}
		scheme := "http"
		var ctls *tls.Config
		if p.TLS != nil {
			scheme = "https"
			if ctls, err = clientTLS(p.TLS); err != nil {
				return nil, fmt.Errorf("peer %s tls: %w", p.Name, err)
			}
		}
		f.peers[p.Name] = replication.Peer{URL: scheme + "://" + p.Replication, Secret: secret, TLS: ctls}
	}
	if t := cfg.Replication.TLS; t != nil {
		if f.replServerTLS, err = serverTLS(t); err != nil {
			return nil, fmt.Errorf("replication.tls: %w", err)
		}
		if f.replClientTLS, err = clientTLS(t); err != nil {
			return nil, fmt.Errorf("replication.tls: %w", err)
		}
	}
	if file := cfg.Replicate.SelfSecretFile; file != "" {
		if f.selfSecret, err = readSelfSecret(file); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// regionListeners are a region's API and replication listeners, bound
// before its data directory is touched.
type regionListeners struct {
	api         net.Listener
	replication net.Listener // nil when replication is not configured
}

func bindRegion(cfg *config.Config) (*regionListeners, error) {
	api, err := listenTCP("api.listen", cfg.API.Listen)
	if err != nil {
		return nil, err
	}
	l := &regionListeners{api: api}
	if cfg.Replication.Listen != "" {
		if l.replication, err = listenTCP("replication.listen", cfg.Replication.Listen); err != nil {
			api.Close()
			return nil, err
		}
	}
	return l, nil
}

// close closes the listeners not handed over yet.
func (l *regionListeners) close() {
	if l == nil {
		return
	}
	for _, ln := range []net.Listener{l.api, l.replication} {
		if ln != nil {
			ln.Close()
		}
	}
	l.api, l.replication = nil, nil
}

// listenTCP binds addr, explaining the usual failures.
func listenTCP(what, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("%s: %s is in use by another process (another regionfs?)", what, addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		host, _, _ := net.SplitHostPort(addr)
		return nil, fmt.Errorf("%s: %s is not an address of this host (behind NAT, listen on the local address)", what, host)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("%s: %s: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)", what, addr)
	}
	return nil, fmt.Errorf("%s: %w", what, err)
}

// dataDirLock is the lock a running region holds on its data directory.
const dataDirLock = "regionfs.lock"

// prepareDataDir creates the data directory with kv/ and blocks/ and locks
// it (flock on DIR/regionfs.lock) so that a second process on the same
// directory is refused with a clear message. The lock is released when the
// returned file is closed (or the process ends).
func prepareDataDir(dir string) (*os.File, error) {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("data_dir %s exists and is not a directory", dir)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, dataDirLock), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data_dir %s is in use by another regionfs process", dir)
		}
		return nil, fmt.Errorf("data_dir %s: lock: %w", dir, err)
	}
	for _, d := range []string{"kv", "blocks"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			lock.Close()
			return nil, fmt.Errorf("data_dir: %w", err)
		}
	}
	return lock, nil
}

// readSelfSecret reads the secret of a region's replication with itself.
func readSelfSecret(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("replication self secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if len(s) < 16 {
		return nil, fmt.Errorf("replication self secret in %s: at least 16 characters", file)
	}
	return []byte(s), nil
}

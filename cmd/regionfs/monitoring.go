package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/regionfs/regionfs/internal/api/cloudwatch"
	snsapi "github.com/regionfs/regionfs/internal/api/sns"
	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine/kv/pebblekv"
	"github.com/regionfs/regionfs/internal/monitor"
	"github.com/regionfs/regionfs/internal/monitor/notify"
)

// monitoring is a region's CloudWatch and SNS: their store (a Pebble DB of
// its own under DataDir/monitor: metric writes are frequent and unsynced,
// kept apart from the file systems' commits), the monitor, the SNS service
// and the publisher of the region's own metrics.
type monitoring struct {
	store *pebblekv.Store
	mon   *monitor.Monitor
	sns   *notify.Service
	pub   *monitor.Publisher
}

// monitorMemTable is the memtable size of the monitoring store.
const monitorMemTable = 4 << 20

// openMonitoring opens n's monitoring (after control and replication,
// which it samples) and puts its handlers in n's API.
func openMonitoring(n *node, cache *pebble.Cache) (m *monitoring, err error) {
	cfg := n.cfg
	m = &monitoring{}
	defer func() {
		if err != nil {
			m.close()
		}
	}()
	popts := pebblekv.Options{Cache: cache, Logger: n.log, MemTableSizeBytes: monitorMemTable}
	if cache == nil {
		popts.CacheSizeBytes = 8 << 20
	}
	if m.store, err = openPebble(filepath.Join(cfg.DataDir, "monitor"), popts, n.space); err != nil {
		return nil, fmt.Errorf("monitor store: %w", err)
	}
	smtp, err := smtpRelay(cfg.SNS.SMTP)
	if err != nil {
		return nil, err
	}
	no := notify.Options{KV: m.store, Region: cfg.Region, AccountID: cfg.AccountID, PublicURL: snsPublicURL(cfg), SMTP: smtp, Logger: n.log}
	if n.space != nil {
		// The monitor store shares the data disk: below the floor the
		// writes that grow it without bound (published messages, metric
		// data) are refused, not let run into ENOSPC (fatal to Pebble's
		// WAL).
		no.Space = n.space
	}
	if m.sns, err = notify.Open(no); err != nil {
		return nil, fmt.Errorf("sns: %w", err)
	}
	mo := monitor.Options{KV: m.store, Region: cfg.Region, AccountID: cfg.AccountID, Notifier: m.sns, Logger: n.log}
	if n.space != nil {
		mo.Space = n.space
	}
	if m.mon, err = monitor.Open(mo); err != nil {
		return nil, fmt.Errorf("cloudwatch: %w", err)
	}
	m.pub = monitor.StartPublisher(monitor.PublisherOptions{Monitor: m.mon, Sources: sources{n}, Gatherer: n.reg, Logger: n.log})
	n.apiOpts.Monitoring = cloudwatch.NewHandler(m.mon, n.log)
	h := snsapi.NewHandler(m.sns, n.log)
	n.apiOpts.SNS = h
	n.apiOpts.Unsigned = h.Public()
	return m, nil
}

// snsPublicURL is where subscribers reach the region without signing:
// sns.public_url, or the API listener.
func snsPublicURL(cfg *config.Config) string {
	if cfg.SNS.PublicURL != "" {
		return cfg.SNS.PublicURL
	}
	scheme := "http"
	if cfg.API.TLS != nil {
		scheme = "https"
	}
	host := cfg.API.Listen
	if strings.HasPrefix(host, ":") || strings.HasPrefix(host, "0.0.0.0:") || strings.HasPrefix(host, "[::]:") {
		h, _ := os.Hostname()
		host = h + host[strings.LastIndexByte(host, ':'):]
	}
	return scheme + "://" + host
}

func smtpRelay(c *config.SMTP) (*notify.SMTP, error) {
	if c == nil {
		return nil, nil
	}
	r := &notify.SMTP{Addr: c.Address, From: c.From, Username: c.Username, Password: c.Password}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("sns.smtp.password_file: %w", err)
		}
		r.Password = strings.TrimSpace(string(b))
	}
	if c.StartTLS {
		host := c.Address[:strings.LastIndexByte(c.Address, ':')]
		r.TLS = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pool, err := loadPool(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("sns.smtp.ca_file: %w", err)
			}
			r.TLS.RootCAs = pool
		}
	}
	return r, nil
}

// pause stops publishing, evaluating and delivering while the region is
// down on demand.
func (m *monitoring) pause(p bool) {
	if m == nil {
		return
	}
	m.pub.Pause(p)
	m.mon.Pause(p)
	m.sns.Pause(p)
}

func (m *monitoring) close() error {
	if m == nil {
		return nil
	}
	if m.pub != nil {
		m.pub.Close()
	}
	var errs []error
	if m.mon != nil {
		errs = append(errs, m.mon.Close())
	}
	if m.sns != nil {
		errs = append(errs, m.sns.Close())
	}
	if m.store != nil {
		errs = append(errs, m.store.Close())
	}
	return errors.Join(errs...)
}

// sources is what the publisher samples of a region.
type sources struct{ n *node }

func (s sources) FileSystems(ctx context.Context) []monitor.FileSystemSample {
	var out []monitor.FileSystemSample
	q := control.FileSystemQuery{}
	for {
		fss, next, err := s.n.control.region.DescribeFileSystems(ctx, q)
		if err != nil {
			return out
		}
		for _, f := range fss {
			if f.LifeCycleState != control.StateAvailable {
				continue
			}
			out = append(out, monitor.FileSystemSample{ID: f.ID, SizeBytes: f.Size.Value, StandardBytes: f.Size.InStandard,
				ThroughputMode: f.ThroughputMode, ProvisionedMibps: f.ProvisionedThroughputMibps})
		}
		if next == "" {
			return out
		}
		q.Marker = next
	}
}

func (s sources) Replications(ctx context.Context) []monitor.ReplicationSample {
	if s.n.repl == nil {
		return nil
	}
	ds, err := s.n.repl.mgr.Describe(ctx, "")
	if err != nil {
		return nil
	}
	out := make([]monitor.ReplicationSample, 0, len(ds))
	for _, d := range ds {
		out = append(out, monitor.ReplicationSample{
			SourceFileSystemID: d.SourceFileSystemID, DestinationFileSystemID: d.DestFileSystemID,
			Source: d.Role == "source", LastReplicated: d.LastReplicated,
			PendingRecords: d.Live.PendingRecords, PendingBytes: d.Live.PendingBytes, ShippedBytes: d.Live.ShippedBytes, LinkUp: d.Live.LinkUp,
		})
	}
	return out
}

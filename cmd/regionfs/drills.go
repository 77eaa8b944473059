package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/regionfs/regionfs/internal/api/drills"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/drill"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/monitor"
	"github.com/regionfs/regionfs/internal/monitor/notify"
	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/tlsca"
	"github.com/regionfs/regionfs/internal/replication"
)

// openDrills opens n's drills (after replication and monitoring, which
// they use) and puts their operations in front of n's EFS API. Regions
// without replication have none.
func openDrills(n *node) (*drill.Service, error) {
	if n.repl == nil {
		return nil, nil
	}
	cfg := n.cfg
	o := drill.Options{
		Region: cfg.Region, Control: n.control.region, KV: n.store, NFSPort: cfg.NFS.Port,
		Replicas:   drillReplicas{mgr: n.repl.mgr, node: n.repl.node, engine: n.engine},
		Registerer: n.reg, Logger: n.log, History: cfg.Drills.History,
		NotificationTopicARN: cfg.Drills.NotificationTopicARN,
	}
	for _, s := range cfg.Subnets {
		o.Subnets = append(o.Subnets, drill.Subnet{ID: s.ID, AvailabilityZone: s.AvailabilityZone})
	}
	if cfg.NFS.TLSClientAuth == "require" {
		// Mount targets serve only NFS over TLS with a client
		// certificate: the drill's probe presents one of the region's.
		o.Dial = certDial(n.nfsCA)
	}
	if bind := subnetBinder(cfg); bind != nil {
		// Mount targets of subnets with a listen address are reached there.
		d := &net.Dialer{Timeout: 5 * time.Second}
		o.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if ap, err := netip.ParseAddrPort(addr); err == nil {
				addr = bind(ap).String()
			}
			return d.DialContext(ctx, network, addr)
		}
	}
	if n.mon != nil {
		o.Publisher = drillPublisher{mon: n.mon.mon, sns: n.mon.sns}
	}
	for _, s := range cfg.Drills.Schedules {
		sc := drill.Schedule{Name: s.Name, Cron: s.Schedule, Input: drill.Input{
			FileSystemID: s.FileSystemID, SubnetID: s.SubnetID, SecurityGroups: s.SecurityGroups, Keep: s.Keep,
			Check: s.Check, CheckTimeout: s.CheckTimeout, MaxRPO: s.MaxRPO, MaxRTO: s.MaxRTO, NotificationTopicARN: s.NotificationTopicARN,
		}}
		if s.TimeZone != "" {
			loc, err := time.LoadLocation(s.TimeZone)
			if err != nil {
				return nil, fmt.Errorf("drills.schedules %s: %w", s.Name, err)
			}
			sc.Location = loc
		}
		o.Schedules = append(o.Schedules, sc)
	}
	s, err := drill.Open(o)
	if err != nil {
		return nil, err
	}
	n.apiOpts.EFS = drills.Wrap(n.apiOpts.EFS, s, n.log)
	return s, nil
}

// certDial connects to a mount target with NFS over TLS (RFC 9289's
// probe, then a handshake), presenting a client certificate of the
// region's NFS CA, issued for each connection (no certificate to renew).
func certDial(ca *tlsca.CA) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		cert, err := ca.Issue(tlsca.Request{CommonName: "regionfs-drill", Client: true})
		if err != nil {
			return nil, err
		}
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc, err := client.StartTLS(ctx, nc, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cert}, ServerName: host, MinVersion: tls.VersionTLS12})
		if err != nil {
			nc.Close()
			return nil, err
		}
		return tc, nil
	}
}

// drillReplicas is the region's replication as drills see it.
type drillReplicas struct {
	mgr    *replconf.Manager
	node   *replication.Node
	engine *engine.Engine
}

func (r drillReplicas) Destination(ctx context.Context, fsID string) (drill.Replication, error) {
	ds, err := r.mgr.Describe(ctx, fsID)
	if err != nil {
		if errors.Is(err, control.ErrReplicationNotFound) {
			return drill.Replication{}, &drill.Error{Kind: drill.ErrNotDestination,
				Message: fmt.Sprintf("%s is not part of a replication configuration in this region; run the drill in the destination region.", fsID)}
		}
		return drill.Replication{}, err
	}
	for _, d := range ds {
		if d.Role == replication.RoleDestination {
			return r.Status(ctx, d.ID)
		}
	}
	d := ds[0]
	return drill.Replication{}, &drill.Error{Kind: drill.ErrNotDestination,
		Message: fmt.Sprintf("%s is the source of replication %s; its replica %s is in %s: run the drill there.", d.SourceFileSystemID, d.ID, d.DestFileSystemID, d.DestRegion)}
}

func (r drillReplicas) Status(_ context.Context, id string) (drill.Replication, error) {
	st, ok := r.node.InboundStatus(id)
	if !ok {
		return drill.Replication{}, &drill.Error{Kind: drill.ErrNotDestination, Message: fmt.Sprintf("Replication %s no longer has its destination in this region.", id)}
	}
	out := drill.Replication{ID: id, SourceRegion: st.PeerRegion, SourceFileSystemID: st.PeerFS, FileSystemID: st.FS,
		Status: string(st.State), StatusMessage: st.Message, LastReplicated: st.LastReplicated, AppliedSeq: st.Applied}
	if fs, err := r.engine.Replica(st.FS); err == nil {
		out.Consistent = fs.Consistent()
		m, _ := fs.Mode()
		out.ReadOnly = m != engine.ModePrimary
	}
	return out, nil
}

func (r drillReplicas) Canary(ctx context.Context, id, token string) (drill.CanaryResult, error) {
	seq, at, err := r.node.Canary(ctx, id, token)
	if err != nil {
		var ce *replication.CallError
		switch {
		case errors.Is(err, replication.ErrUnreachable):
			return drill.CanaryResult{}, fmt.Errorf("%w: %w", drill.ErrSourceUnreachable, err)
		case errors.As(err, &ce):
			return drill.CanaryResult{}, &drill.Error{Kind: drill.ErrBadRequest, Message: ce.Message}
		case errors.Is(err, replication.ErrBadCanary):
			return drill.CanaryResult{}, &drill.Error{Kind: drill.ErrBadRequest, Message: err.Error()}
		}
		return drill.CanaryResult{}, err
	}
	return drill.CanaryResult{Seq: seq, SourceTime: at, Committed: time.Now()}, nil
}

func (r drillReplicas) WaitCanary(ctx context.Context, id string, seq uint64, token string) (time.Time, error) {
	return r.node.WaitCanary(ctx, id, seq, token)
}

// drillPublisher publishes finished drills to the region's CloudWatch and
// SNS.
type drillPublisher struct {
	mon *monitor.Monitor
	sns *notify.Service
}

func (p drillPublisher) PutMetrics(ctx context.Context, data []drill.Datum) error {
	now := time.Now()
	var out []monitor.Datum
	for _, d := range data {
		m := monitor.Metric{Namespace: drill.MetricsNamespace, Name: d.Name}
		for k, v := range d.Dimensions {
			m.Dimensions = append(m.Dimensions, monitor.Dimension{Name: k, Value: v})
		}
		v := d.Value
		out = append(out, monitor.Datum{Metric: m, Timestamp: now, Unit: d.Unit, Resolution: 60, Value: &v})
	}
	return p.mon.PutMetricData(ctx, drill.MetricsNamespace, out)
}

func (p drillPublisher) Notify(ctx context.Context, topicARN, subject, message string) error {
	_, err := p.sns.Publish(ctx, notify.PublishInput{TopicARN: topicARN, Subject: subject, Message: message})
	return err
}

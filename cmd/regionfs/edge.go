package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/regionfs/regionfs/internal/api/edge"
	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/serve"
)

func newEdgeCmd() *cobra.Command {
	var path string
	var lf logFlags
	cmd := &cobra.Command{
		Use:   "edge --config FILE",
		Short: "Run the client endpoint that forwards each request to its region",
		Long: `Edge is the one endpoint clients use (AWS_ENDPOINT_URL_EFS and friends). It is
stateless: it verifies each request's SigV4 signature and forwards it
unchanged to the API listener of the region named in its credential scope.
A region that is down is answered 503 ServiceUnavailableException within a
second; the other regions keep working. Run several behind a load balancer.
See examples/edge.yaml. Under systemd (Type=notify,
deploy/systemd/regionfs-edge.service) it reports READY=1 once it listens.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadEdge(path)
			if err != nil {
				return err
			}
			if _, err := config.Secrets(cfg.Credentials); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w\n(regionfs keygen --edge --config %s writes the missing secret files)", err, path)
			}
			log, err := newLogger(lf.apply(cfg.Log), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			e, err := newEdge(cfg, log, prometheus.NewRegistry())
			if err != nil {
				return err
			}
			return runEdge(cmd.Context(), e, cfg.Listen, func() {
				context.AfterFunc(cmd.Context(), notifyReady(log, "edge serving on "+cfg.Listen))
			})
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "edge config file (YAML)")
	lf.add(cmd, "", "")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func newEdge(cfg *config.Edge, log *slog.Logger, reg *prometheus.Registry) (*edge.Edge, error) {
	secrets, err := config.Secrets(cfg.Credentials)
	if err != nil {
		return nil, err
	}
	targets := map[string]edge.Target{}
	for _, r := range cfg.Regions {
		t := edge.Target{Addr: r.API}
		if r.TLS != nil {
			if t.TLS, err = clientTLS(r.TLS); err != nil {
				return nil, fmt.Errorf("region %s tls: %w", r.Name, err)
			}
		}
		targets[r.Name] = t
	}
	var srvTLS *tls.Config
	if cfg.TLS != nil {
		if srvTLS, err = serverTLS(cfg.TLS); err != nil {
			return nil, fmt.Errorf("edge tls: %w", err)
		}
	}
	return edge.New(edge.Options{
		TLS:      srvTLS,
		Secret:   func(id string) (string, bool) { s, ok := secrets[id]; return s, ok },
		Regions:  targets,
		Registry: reg,
		Logger:   log,
	})
}

// runEdge serves e on addr until ctx ends; ready, when set, is called once
// it listens.
func runEdge(ctx context.Context, e *edge.Edge, addr string, ready func()) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("edge: listen: %w", err)
	}
	if ready != nil {
		ready()
	}
	return serve.Run(ctx, e, ln, 30*time.Second)
}

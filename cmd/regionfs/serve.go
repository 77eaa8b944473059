package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/regionfs/regionfs/internal/config"
)

func newServeCmd() *cobra.Command {
	var path string
	var lf logFlags
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run one region: its API, mount targets and storage engine",
		Long: `Serve runs one region from a YAML config (see examples/us-east-1.yaml): the
metadata store and block files under data_dir, the storage engine, the EFS
control plane, one NFS server per mount target on its own address, and the
region's HTTP API (EFS, EC2, CloudWatch, SNS, /metrics) on api.listen, every
request SigV4-verified against the configured credentials.

It runs until SIGINT, SIGTERM or SIGHUP (there is no reload), then stops
accepting, finishes requests in flight, makes buffered NFS writes durable and
closes the store. Under systemd (Type=notify, deploy/systemd/regionfs@.service)
it reports READY=1 once the API and every mount target serve, and STOPPING=1
when it shuts down.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			log, err := newLogger(lf.apply(cfg.Log), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			n, err := openNode(ctx, cfg, log, nil, exitOnFatal(log))
			if err != nil {
				err = fmt.Errorf("region %s: %w", cfg.Region, err)
				if fe := (*filesError)(nil); errors.As(err, &fe) && errors.Is(err, fs.ErrNotExist) {
					err = fmt.Errorf("%w\n(regionfs keygen --config %s writes the missing secret and key files)", err, path)
				}
				return err
			}
			log.Info("region serving", "region", cfg.Region, "api", cfg.API.Listen, "nfs_port", cfg.NFS.Port, "data_dir", cfg.DataDir)
			err = n.serveUntilDone(ctx, func() func() {
				return notifyReady(log, "region "+cfg.Region+" serving on "+cfg.API.Listen)
			})
			log.Info("region stopped", "region", cfg.Region, "err", err)
			return err
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "region config file (YAML)")
	lf.add(cmd, "", "")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

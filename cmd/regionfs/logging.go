package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/regionfs/regionfs/internal/config"
)

// newLogger builds the process's slog handler.
func newLogger(l config.Log, w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(l.Level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	o := &slog.HandlerOptions{Level: lvl}
	switch l.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, o)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", l.Format)
}

// logFlags are the --log-level and --log-format flags of serve, edge and
// dev; set, they override the config file's log section.
type logFlags struct{ level, format string }

func (f *logFlags) add(cmd *cobra.Command, defLevel, defFormat string) {
	cmd.Flags().StringVar(&f.level, "log-level", defLevel, "debug, info, warn or error"+overrides(defLevel))
	cmd.Flags().StringVar(&f.format, "log-format", defFormat, "text or json"+overrides(defFormat))
}

func overrides(def string) string {
	if def == "" {
		return " (default: the config's log section)"
	}
	return ""
}

// apply returns l with the flags that were given.
func (f *logFlags) apply(l config.Log) config.Log {
	if f.level != "" {
		l.Level = f.level
	}
	if f.format != "" {
		l.Format = f.format
	}
	return l
}

// regionLogger is the logger of everything a region runs: every line
// carries region=<name> exactly once. Packages differ in whether they add
// the region themselves (replication, control's KMS domain, cfn and the
// API server do); the handler drops a second region attribute of the same
// value, so every component can simply be given this logger.
func regionLogger(base *slog.Logger, region string) *slog.Logger {
	return slog.New(&regionHandler{inner: base.Handler().WithAttrs([]slog.Attr{slog.String("region", region)}), region: region})
}

type regionHandler struct {
	inner  slog.Handler
	region string
	// grouped: attributes now go into a group, where a region key is
	// another key.
	grouped bool
}

func (h *regionHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *regionHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.grouped || !h.hasRegion(r) {
		return h.inner.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if !h.same(a) {
			out.AddAttrs(a)
		}
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *regionHandler) hasRegion(r slog.Record) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = h.same(a)
		return !found
	})
	return found
}

// same reports whether a repeats this region (another region's name is
// kept: it says something).
func (h *regionHandler) same(a slog.Attr) bool {
	return a.Key == "region" && a.Value.Resolve().String() == h.region
}

func (h *regionHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if !h.grouped {
		kept := attrs[:0:0]
		for _, a := range attrs {
			if !h.same(a) {
				kept = append(kept, a)
			}
		}
		attrs = kept
	}
	return &regionHandler{inner: h.inner.WithAttrs(attrs), region: h.region, grouped: h.grouped}
}

func (h *regionHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &regionHandler{inner: h.inner.WithGroup(name), region: h.region, grouped: true}
}

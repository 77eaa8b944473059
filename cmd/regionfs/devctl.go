package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/regionfs/regionfs/internal/serve"
)

// The running `regionfs dev` listens on a unix socket in its data directory
// for `regionfs dev region stop|start|status`.
const devSocket = "dev.sock"

type devControl struct {
	run  *serve.Running
	path string
}

// devRunning reports whether a regionfs dev answers on dataDir's socket.
func devRunning(dataDir string) bool {
	c, err := net.DialTimeout("unix", filepath.Join(dataDir, devSocket), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func startDevControl(ctx context.Context, dataDir string, nodes map[string]*node, log *slog.Logger) (*devControl, error) {
	path := filepath.Join(dataDir, devSocket)
	if devRunning(dataDir) {
		return nil, fmt.Errorf("another regionfs dev is running on %s", dataDir)
	}
	os.Remove(path) // a stale socket of a process that died
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("dev control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/regions/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		name, action := r.PathValue("name"), r.PathValue("action")
		n, ok := nodes[name]
		if !ok {
			http.Error(w, fmt.Sprintf("no region %q in this regionfs dev (regions: %s)", name, strings.Join(regionNames(nodes), ", ")), http.StatusNotFound)
			return
		}
		var err error
		switch action {
		case "stop":
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err = n.outage(sctx)
			cancel()
		case "start":
			err = n.recover(context.WithoutCancel(ctx))
		default:
			http.Error(w, "action must be stop or start", http.StatusBadRequest)
			return
		}
		if err != nil {
			log.Error("dev region "+action, "region", name, "err", err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		log.Info("dev region "+action, "region", name)
		fmt.Fprintf(w, "%s: %s\n", name, state(n))
	})
	mux.HandleFunc("GET /v1/regions", func(w http.ResponseWriter, r *http.Request) {
		st := map[string]string{}
		for name, n := range nodes {
			st[name] = state(n)
		}
		json.NewEncoder(w).Encode(st)
	})
	srv := serve.NewHTTP(serve.HTTPOptions{Handler: mux, ReadHeaderTimeout: 5 * time.Second, Logger: log})
	return &devControl{run: serve.Start(ctx, srv, ln), path: path}, nil
}

func state(n *node) string {
	if n.isDown() {
		return "down"
	}
	return "up"
}

func regionNames(nodes map[string]*node) []string {
	var names []string
	for n := range nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (c *devControl) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.run.Stop(ctx)
	os.Remove(c.path)
}

func newDevRegionCmd(dataDir *string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "region stop|start|status [NAME]",
		Short: "Take a region of the running regionfs dev down or up (a regional outage on demand)",
		Long: `Talks to the running 'regionfs dev' through DIR/dev.sock:

  regionfs dev region stop us-east-1    # its API and NFS stop answering; the edge stays up
  regionfs dev region start us-east-1
  regionfs dev region status            # one line per region; --json for the raw answer

Run it from the directory regionfs dev was started in, or pass the same
--data-dir.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sock := filepath.Join(*dataDir, devSocket)
			client := &http.Client{
				Timeout: 60 * time.Second,
				Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, "unix", sock)
				}},
			}
			var req *http.Request
			switch {
			case args[0] == "status" && len(args) == 1:
				req, _ = http.NewRequestWithContext(cmd.Context(), "GET", "http://dev/v1/regions", nil)
			case (args[0] == "stop" || args[0] == "start") && len(args) == 2:
				req, _ = http.NewRequestWithContext(cmd.Context(), "POST", "http://dev/v1/regions/"+args[1]+"/"+args[0], nil)
			default:
				return errors.New("usage: regionfs dev region stop|start NAME, or regionfs dev region status")
			}
			resp, err := client.Do(req)
			if err != nil {
				return noDevError(*dataDir, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				return errors.New(strings.TrimSpace(string(b)))
			}
			out := cmd.OutOrStdout()
			if args[0] != "status" || asJSON {
				_, err = out.Write(b)
				return err
			}
			var st map[string]string
			if err := json.Unmarshal(b, &st); err != nil {
				return fmt.Errorf("dev control answer: %w", err)
			}
			names := make([]string, 0, len(st))
			for n := range st {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				fmt.Fprintf(out, "%s: %s\n", n, st[n])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "with status: print the raw JSON answer")
	return cmd
}

// noDevError explains a failed connection to the dev control socket.
func noDevError(dataDir string, err error) error {
	abs, aerr := filepath.Abs(dataDir)
	if aerr != nil {
		abs = dataDir
	}
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("no regionfs dev is running on %s (no answer on %s); "+
			"if it runs with another data directory, pass it: regionfs dev region … --data-dir DIR", abs, filepath.Join(abs, devSocket))
	}
	return fmt.Errorf("regionfs dev on %s: %w", abs, err)
}

package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// helpTopics are `regionfs help TOPIC` pages (cobra lists commands without
// a Run as additional help topics) and sections of `regionfs man`.
func helpTopics() []*cobra.Command {
	topic := func(name, short, long string) *cobra.Command {
		return &cobra.Command{Use: name, Short: short, Long: strings.Trim(long, "\n")}
	}
	return []*cobra.Command{
		topic("production", "Running two regions on two hosts: the steps (docs/production.md)", `
Production: one 'regionfs serve --config REGION.yaml' per region (a systemd
unit, deploy/systemd/regionfs@.service) and stateless 'regionfs edge'
instances in front of them (deploy/systemd/regionfs-edge.service). The full
guide, tested on every CI run, is docs/production.md; in short:

 1. Install the binary, a 'regionfs' system user, the units.
 2. Write /etc/regionfs/REGION.yaml on each host (examples/us-east-1.yaml
    explains every key): the host's addresses for api.listen and
    replication.listen, the other region in peers, a subnet whose addresses
    the host owns (ip route add local SUBNET dev lo), or listen_address
    behind NAT.
 3. regionfs keygen --config /etc/regionfs/REGION.yaml --owner regionfs on
    the first host; copy the access key's secret and the pair secret to the
    other host; keygen there (it keeps them, writes that region's KMS key).
 4. systemctl enable --now regionfs@REGION regionfs-edge
 5. Clients: AWS_ENDPOINT_URL=http://EDGE, the access key; NFS to the mount
    targets' addresses, port 2049.

Back up data_dir only stopped or from an atomic file-system snapshot, and
/etc/regionfs (the KMS keys) apart from it. Upgrade one region at a time;
'regionfs version' prints the storage and journal formats ('regionfs help
files').`),
		topic("ports", "What listens where, and who must reach it", `
  7070/tcp  region API (api.listen): EFS, EC2, CloudWatch, SNS, GET /metrics.
            Reached by edges and monitoring; requests are SigV4-signed.
  7443/tcp  replication (replication.listen): reached by the other region's
            host only; requests signed with the pair secret, optional mTLS.
  2049/tcp  NFS, MOUNT and the portmapper on every mount target's address
            (nfs.port); reached by clients the security groups admit.
  edge      the client endpoint (the edge config's listen, 8070 in
            docs/production.md); AWS_ENDPOINT_URL points at it.

regionfs dev: the edge on 127.0.0.1:7070, us-east-1 on 127.1.0.1 (7070, 7443),
us-west-2 on 127.2.0.1, mount targets on 127.x.y.z:12049.`),
		topic("files", "Configuration, secrets, data directory and formats", `
/etc/regionfs/REGION.yaml    a region's config (examples/us-east-1.yaml)
/etc/regionfs/edge.yaml      an edge's config (examples/edge.yaml)
secret and key files         named by the config; written by 'regionfs
                             keygen' (mode 0600), never overwritten
data_dir/kv/                 the metadata store (Pebble)
data_dir/blocks/             block files, two-level hex fan-out
data_dir/regionfs.lock       held while a process uses data_dir
data_dir/kms/keyring.json    keys made through the KMS API
regionfs-data/               regionfs dev: both regions, credentials.json,
                             env.sh (the environment for the aws CLI)

'regionfs version' prints storage-format N and journal-format M. A release
opens stores of its format and every earlier one (converting in place, once:
keep a backup from before), refuses a store of a newer format without
changing it, and speaks the replication wire version of the previous
release too, so regions upgrade one at a time.`),
		topic("environment", "Environment of the operator commands (status, failover, failback)", `
status, failover and failback call the public API like the aws CLI:

  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY   a credential of the configs
  AWS_REGION (or --region)                   the region to ask
  AWS_ENDPOINT_URL_EFS or AWS_ENDPOINT_URL   the edge (or --endpoint)

With regionfs dev: . regionfs-data/env.sh sets all of them. The EC2
metadata service is never asked: a missing credential is reported at once.`),
		topic("exit-status", "What regionfs's exit statuses mean", `
0  success; serve, edge and dev after SIGTERM, SIGINT or SIGHUP and a clean stop
1  an error, explained on stderr: a config mistake, a missing or bad secret
   or key file, an address in use or not of this host, a data directory in
   use by another process, a failed request
2  a storage error at run time (a failed fsync): never retried in place;
   restart the process (systemd does), the engine replays its journal`),
	}
}

// newManCmd prints a manual page of every command and topic.
func newManCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "man",
		Short: "Print the regionfs(1) manual page (roff): regionfs man > regionfs.1",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeMan(cmd.OutOrStdout(), cmd.Root(), time.Now())
		},
	}
}

// writeMan renders root's commands, flags and help topics as roff.
func writeMan(w io.Writer, root *cobra.Command, now time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH REGIONFS 1 %q %q \"regionfs manual\"\n", now.Format("2006-01-02"), "regionfs "+versionWord())
	b.WriteString(".SH NAME\nregionfs \\- " + roff(root.Short) + "\n")
	b.WriteString(".SH SYNOPSIS\n.B regionfs\n.I command\n[\\fIflags\\fR]\n")
	b.WriteString(".SH DESCRIPTION\n" + roffText(root.Long) + "\n")
	var cmds, topics []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			if s.Hidden || s.Name() == "help" || s.Name() == "completion" {
				continue
			}
			if s.Runnable() {
				cmds = append(cmds, s)
			} else if !s.HasSubCommands() {
				topics = append(topics, s)
			}
			walk(s)
		}
	}
	walk(root)
	sort.SliceStable(cmds, func(i, j int) bool { return cmds[i].CommandPath() < cmds[j].CommandPath() })
	b.WriteString(".SH COMMANDS\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, ".SS %s\n", roff(strings.TrimPrefix(c.CommandPath(), "regionfs ")))
		fmt.Fprintf(&b, ".B %s\n.br\n", roff(c.UseLine()))
		long := c.Long
		if long == "" {
			long = c.Short
		}
		b.WriteString(roffText(long) + "\n")
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Hidden || f.Name == "help" {
				return
			}
			name := "\\-\\-" + roff(f.Name)
			if f.Shorthand != "" {
				name = "\\-" + f.Shorthand + ", " + name
			}
			usage := f.Usage
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
				usage += " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", name, roff(usage))
		})
	}
	for _, t := range topics {
		fmt.Fprintf(&b, ".SH %s\n.nf\n%s\n.fi\n", strings.ToUpper(strings.ReplaceAll(t.Name(), "-", " ")), roff(t.Long))
	}
	b.WriteString(".SH SEE ALSO\nREADME.md, docs/production.md and docs/design.md in the source tree; aws(1), nfs-cp(1), systemd.exec(5).\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// versionWord is the release alone, for the page's header.
func versionWord() string {
	f := strings.Fields(versionLine())
	if len(f) > 1 {
		return f[1]
	}
	return "devel"
}

// roff escapes text for roff: backslashes, and a leading dot or quote.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

// roffText is a help text as roff: paragraphs filled, indented lines (the
// examples) kept as they are.
func roffText(s string) string {
	var out []string
	for _, p := range strings.Split(strings.TrimSpace(s), "\n\n") {
		if strings.HasPrefix(p, " ") || strings.Contains(p, "\n ") {
			out = append(out, ".PP\n.nf\n"+roff(p)+"\n.fi")
			continue
		}
		out = append(out, ".PP\n"+roff(p))
	}
	return strings.Join(out, "\n")
}

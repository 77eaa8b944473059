package deploy

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/testkit"
)

// instruction is one Dockerfile instruction (continuation lines joined).
type instruction struct {
	line      int
	cmd, args string
}

func parseDockerfile(t *testing.T, text string) []instruction {
	t.Helper()
	var out []instruction
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		start := i + 1
		for strings.HasSuffix(l, `\`) && i+1 < len(lines) {
			i++
			l = strings.TrimSuffix(l, `\`) + " " + strings.TrimSpace(lines[i])
		}
		cmd, args, _ := strings.Cut(l, " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
	}
	return out
}

// TestDockerfile checks deploy/Dockerfile where no container runtime can
// build it: lint rules (those of hadolint that apply), its COPY sources,
// its build stage run outside a container, and the image's command line.
func TestDockerfile(t *testing.T) {
	text := readFile(t, "deploy/Dockerfile")
	ins := parseDockerfile(t, text)
	args := map[string]string{}
	var stages []string
	var last []instruction // the final stage
	for _, in := range ins {
		switch in.cmd {
		case "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case "FROM":
			image := strings.Fields(in.args)[0]
			for k, v := range args {
				image = strings.ReplaceAll(image, "${"+k+"}", v)
			}
			switch {
			case !strings.Contains(image, ":") && !strings.Contains(image, "@"):
				t.Errorf("line %d: FROM %s without a tag (DL3006)", in.line, image)
			case strings.HasSuffix(image, ":latest"):
				t.Errorf("line %d: FROM %s (DL3007)", in.line, image)
			}
			stages = append(stages, in.args)
			last = nil
		case "ADD":
			t.Errorf("line %d: ADD; use COPY (DL3020)", in.line)
		case "MAINTAINER":
			t.Errorf("line %d: MAINTAINER is deprecated (DL4000)", in.line)
		case "RUN":
			if regexp.MustCompile(`\b(cd|sudo)\s`).MatchString(in.args) {
				t.Errorf("line %d: cd or sudo in RUN (DL3003, DL3004)", in.line)
			}
		case "COPY":
			if !strings.Contains(in.args, "--from=") {
				for _, src := range strings.Fields(in.args)[:len(strings.Fields(in.args))-1] {
					if _, err := os.Stat(filepath.Join(root, src)); err != nil && !strings.HasPrefix(src, "--") {
						t.Errorf("line %d: COPY source %s: %v", in.line, src, err)
					}
				}
			}
		}
		last = append(last, in)
	}
	if len(stages) < 2 {
		t.Fatalf("want a build stage and a runtime stage, got %d stages", len(stages))
	}
	var user, entrypoint, cmd string
	for _, in := range last {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "CMD":
			cmd = in.args
		}
	}
	if user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
		t.Errorf("the image runs as %q, want a non-root user (DL3002)", user)
	}
	if !strings.HasPrefix(entrypoint, "[") || !strings.HasPrefix(cmd, "[") {
		t.Errorf("ENTRYPOINT %s / CMD %s: want the exec form (DL3025)", entrypoint, cmd)
	}

	// The build stage, outside a container: WORKDIR /src is the
	// repository, /out a temporary directory; ARGs at their defaults.
	out := t.TempDir()
	for _, in := range ins {
		if in.cmd != "RUN" || strings.HasPrefix(in.args, "go mod download") {
			continue
		}
		script := strings.ReplaceAll(in.args, "/out/", out+"/")
		for k, v := range args {
			script = strings.ReplaceAll(script, "${"+k+"}", v)
		}
		c := exec.Command("sh", "-c", script)
		c.Dir = root
		if b, err := c.CombinedOutput(); err != nil {
			t.Fatalf("line %d: RUN %s: %v\n%s", in.line, script, err, b)
		}
	}
	bin := filepath.Join(out, "bin", "regionfs")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked: the distroless static base has no libc", bin)
		}
	}
	f.Close()
	for _, d := range []string{"var/lib/regionfs", "etc/regionfs/secrets"} {
		if fi, err := os.Stat(filepath.Join(out, d)); err != nil || !fi.IsDir() {
			t.Errorf("the build stage does not make %s: %v", d, err)
		}
	}
	// The image's command line: ENTRYPOINT plus CMD.
	argv := execForm(t, entrypoint)
	argv = append(argv, execForm(t, cmd)...)
	if argv[0] != "/usr/local/bin/regionfs" {
		t.Errorf("ENTRYPOINT %v", argv)
	}
	if b, err := exec.Command(bin, argv[1:]...).CombinedOutput(); err != nil || !strings.Contains(string(b), "Usage:") {
		t.Errorf("the image's command %v: %v\n%s", argv, err, b)
	}
	if b, err := exec.Command(bin, "--version").CombinedOutput(); err != nil || !strings.HasPrefix(string(b), "regionfs devel") {
		t.Errorf("--version: %v %s", err, b)
	}

	// An external linter where one is installed: hadolint, or
	// dockerfile-utils (npm). Neither is packaged for Debian, so this is an
	// optional cross-check (docs/production.md says how to run hadolint):
	// the rules above are the ones this test requires.
	for _, lint := range [][]string{{"hadolint", "--no-color"}, {"dockerfile-utils", "lint"}} {
		p, err := exec.LookPath(lint[0])
		if err != nil {
			t.Logf("%s is not installed: skipping its lint of deploy/Dockerfile", lint[0])
			continue
		}
		b, err := exec.Command(p, append(lint[1:], filepath.Join(root, "deploy/Dockerfile"))...).CombinedOutput()
		if err != nil || strings.TrimSpace(string(b)) != "" {
			t.Errorf("%s: %v\n%s", lint[0], err, b)
		}
	}
}

func execForm(t *testing.T, s string) []string {
	t.Helper()
	var argv []string
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	for _, a := range strings.Split(s, ",") {
		argv = append(argv, strings.Trim(strings.TrimSpace(a), `"`))
	}
	return argv
}

// TestCompose: the compose file validates, its configs are valid region and
// edge configs, and its keygen step (run here with the container's paths
// moved to a temporary directory) writes what both regions need.
func TestCompose(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	move := func(s string) string { return strings.ReplaceAll(s, "/etc/regionfs/", dir+"/etc/regionfs/") }
	var regions []string
	for _, r := range []string{"us-east-1", "us-west-2"} {
		text := readFile(t, "deploy/compose/"+r+".yaml")
		cfg, err := config.Parse([]byte(text))
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		if cfg.Region != r || cfg.Subnets[0].ListenAddress == "" {
			t.Errorf("%s: region %s, listen_address %q", r, cfg.Region, cfg.Subnets[0].ListenAddress)
		}
		p := filepath.Join(dir, r+".yaml")
		os.WriteFile(p, []byte(move(text)), 0o600)
		regions = append(regions, "--config", p)
	}
	if _, err := config.ParseEdge([]byte(readFile(t, "deploy/compose/edge.yaml"))); err != nil {
		t.Fatalf("edge.yaml: %v", err)
	}
	compose := readFile(t, "deploy/compose/compose.yaml")
	if !strings.Contains(compose, `command: ["keygen", "--config", "/etc/regionfs/conf/us-east-1.yaml", "--config", "/etc/regionfs/conf/us-west-2.yaml"]`) {
		t.Fatal("compose.yaml's keygen command changed: update this test")
	}
	out, err := exec.Command(bin, append([]string{"keygen"}, regions...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "wrote "); n != 4 { // access key, pair secret, two KMS keys
		t.Errorf("keygen wrote %d files:\n%s", n, out)
	}
	dc := testkit.NeedTool(t, "docker-compose")
	cmd := exec.Command(dc, "-f", filepath.Join(root, "deploy/compose/compose.yaml"), "config", "-q")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, b)
	}
}

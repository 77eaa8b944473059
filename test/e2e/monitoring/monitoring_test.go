package monitoringe2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/monitor/notify"
	"github.com/regionfs/regionfs/internal/testkit"
)

const (
	accessKey = "AKIAMONITORE2ETEST01"
	secretKey = "monitoring-e2e-secret-key-0123456789"
	pairKey   = "monitoring-e2e-pair-secret-0123456789"
)

const edgeConfig = `
listen: "127.61.0.9:7070"
credentials: [{access_key_id: ` + accessKey + `, secret_access_key: ` + secretKey + `}]
regions:
  - {name: us-east-1, api: "127.61.0.1:7070"}
  - {name: us-west-2, api: "127.62.0.1:7070"}
`

// proc is a regionfs process (or another server a test runs).
type proc struct {
	testkit.Process
	t   *testing.T
	url string
}

func startProc(t *testing.T, bin, log, url string, args ...string) *proc {
	p := &proc{Process: testkit.Process{Args: append([]string{bin}, args...), Log: log}, t: t, url: url}
	p.start()
	t.Cleanup(p.Stop)
	return p
}

func (p *proc) start() {
	p.t.Helper()
	p.Start(p.t, p.url+"/metrics")
}

// receiver is an SNS HTTP subscriber: it confirms subscriptions by
// fetching the SubscribeURL and keeps every message whose signature
// verifies against the certificate at its SigningCertURL.
type receiver struct {
	mu   sync.Mutex
	msgs []map[string]string
	bad  []string
	url  string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r.url = "http://" + ln.Addr().String() + "/hook"
	return r
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var m map[string]string
	json.Unmarshal(body, &m)
	problem := ""
	if cert, err := get(m["SigningCertURL"]); err != nil {
		problem = "certificate: " + err.Error()
	} else if err := notify.Verify(body, cert); err != nil {
		problem = "signature: " + err.Error()
	} else if req.Header.Get("X-Amz-Sns-Message-Type") != m["Type"] {
		problem = "header x-amz-sns-message-type"
	}
	if problem == "" && m["Type"] == "SubscriptionConfirmation" {
		if _, err := get(m["SubscribeURL"]); err != nil {
			problem = "SubscribeURL: " + err.Error()
		}
	}
	r.mu.Lock()
	if problem != "" {
		r.bad = append(r.bad, problem)
	} else {
		r.msgs = append(r.msgs, m)
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func get(u string) ([]byte, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s %s", u, resp.Status, b)
	}
	return b, err
}

// alarm returns the first notification of an alarm reaching state.
// alarm returns the first notification of alarm name's transition to
// state among the messages after the first since (an alarm may go through
// a state more than once: treat-missing-data breaching can put a new alarm
// in ALARM before its metric has datapoints).
func (r *receiver) alarm(name, state string, since int) map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs[min(since, len(r.msgs)):] {
		if m["Type"] != "Notification" {
			continue
		}
		var a map[string]any
		if json.Unmarshal([]byte(m["Message"]), &a) == nil && a["AlarmName"] == name && a["NewStateValue"] == state {
			return a
		}
	}
	return nil
}

// count returns how many messages the receiver has.
func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// smtpReceiver is a minimal SMTP server that keeps the messages it gets.
type smtpReceiver struct {
	mu   sync.Mutex
	mail []string
	addr string
}

func newSMTP(t *testing.T) *smtpReceiver {
	s := &smtpReceiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpReceiver) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	fmt.Fprintf(c, "220 localhost ESMTP test\r\n")
	var data strings.Builder
	inData := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if inData {
			if line == ".\r\n" {
				inData = false
				s.mu.Lock()
				s.mail = append(s.mail, data.String())
				s.mu.Unlock()
				data.Reset()
				fmt.Fprintf(c, "250 OK\r\n")
				continue
			}
			data.WriteString(line)
			continue
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			fmt.Fprintf(c, "250 localhost\r\n")
		case cmd == "DATA":
			inData = true
			fmt.Fprintf(c, "354 go ahead\r\n")
		case cmd == "QUIT":
			fmt.Fprintf(c, "221 bye\r\n")
			return
		default:
			fmt.Fprintf(c, "250 OK\r\n")
		}
	}
}

func (s *smtpReceiver) find(substr string) string { return s.findSince(substr, 0) }

// count returns how many messages the server has received.
func (s *smtpReceiver) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mail)
}

// findSince is find among the messages after the first since.
func (s *smtpReceiver) findSince(substr string, since int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.mail[min(since, len(s.mail)):] {
		if strings.Contains(decodeMail(m), substr) {
			return decodeMail(m)
		}
	}
	return ""
}

// decodeMail returns a message's headers and decoded base64 body.
func decodeMail(m string) string {
	head, body, _ := strings.Cut(m, "\r\n\r\n")
	b, err := base64Decode(strings.ReplaceAll(body, "\r\n", ""))
	if err != nil {
		return m
	}
	return head + "\n\n" + string(b)
}

type cli struct {
	t   *testing.T
	aws string
	env []string
}

func (c *cli) run(args ...string) (string, error) {
	cmd := exec.Command(c.aws, args...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (c *cli) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

var linkRe = regexp.MustCompile(`http://\S+Action=ConfirmSubscription\S+`)

// world is two regions replicating, the edge and the aws CLI.
type world struct {
	bin      string
	regions  map[string]*proc
	aws      *cli
	dir      string
	src, dst string
}

// newWorld starts us-east-1 (127.61) and us-west-2 (127.62), the edge
// (127.61.0.9:7070), and a file system in us-east-1 replicated to
// us-west-2; smtp is the relay of the regions' email subscriptions.
func newWorld(t *testing.T, smtp string) *world {
	t.Helper()
	awsPath := testkit.NeedTool(t, "aws")
	bin := testkit.BuildRegionfs(t)
	dir := t.TempDir()
	w := &world{bin: bin, regions: map[string]*proc{}, dir: dir}
	for _, r := range []struct{ name, net, id, peer, peerNet string }{
		{"us-east-1", "127.61", "a", "us-west-2", "127.62"},
		{"us-west-2", "127.62", "b", "us-east-1", "127.61"},
	} {
		rd := filepath.Join(dir, r.name)
		os.MkdirAll(rd, 0o700)
		os.WriteFile(filepath.Join(rd, "kms.key"), []byte(strings.Repeat("3c", 32)+"\n"), 0o600)
		cfg := filepath.Join(rd, "region.yaml")
		os.WriteFile(cfg, []byte(testkit.PairedRegion{Name: r.name, Dir: rd, Net: r.net, ID: r.id, Peer: r.peer, PeerReplication: r.peerNet + ".0.1:7443", PeerAPI: r.peerNet + ".0.1:7070",
			AccessKey: accessKey, SecretKey: secretKey, PairKey: pairKey, Extra: fmt.Sprintf("sns: {smtp: {address: %q, from: \"alerts@regionfs.test\"}}\n", smtp)}.Config()), 0o600)
		w.regions[r.name] = startProc(t, bin, filepath.Join(rd, "serve.log"), "http://"+r.net+".0.1:7070", "serve", "--config", cfg)
	}
	os.WriteFile(filepath.Join(dir, "edge.yaml"), []byte(edgeConfig), 0o600)
	startProc(t, bin, filepath.Join(dir, "edge.log"), "http://127.61.0.9:7070", "edge", "--config", filepath.Join(dir, "edge.yaml"))
	aws := &cli{t: t, aws: awsPath, env: append(os.Environ(), "AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_ENDPOINT_URL=http://127.61.0.9:7070", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
		"AWS_CONFIG_FILE="+dir+"/c", "AWS_SHARED_CREDENTIALS_FILE="+dir+"/s")}
	w.aws = aws
	w.src = aws.must("efs", "create-file-system", "--creation-token", "mon", "--query", "FileSystemId", "--output", "text")
	testkit.WaitFor(t, "source available", 30*time.Second, func() bool {
		out, _ := aws.run("efs", "describe-file-systems", "--file-system-id", w.src, "--query", "FileSystems[0].LifeCycleState", "--output", "text")
		return out == "available"
	})
	aws.must("efs", "create-replication-configuration", "--source-file-system-id", w.src, "--destinations", `[{"Region":"us-west-2"}]`)
	testkit.WaitFor(t, "replication ENABLED", 60*time.Second, func() bool {
		out, _ := aws.run("efs", "describe-replication-configurations", "--file-system-id", w.src, "--query",
			"Replications[0].Destinations[0].[Status,FileSystemId]", "--output", "text")
		f := strings.Fields(out)
		if len(f) == 2 && f[0] == "ENABLED" {
			w.dst = f[1]
			return true
		}
		return false
	})
	return w
}

func TestAlarmOnReplicationLag(t *testing.T) {
	mail := newSMTP(t)
	rcv := newReceiver(t)
	w := newWorld(t, mail.addr)
	aws, regions, src, dst := w.aws, w.regions, w.src, w.dst
	start := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	end := time.Now().UTC().Add(10 * time.Minute).Format(time.RFC3339)
	maxLag := func(region string, dims ...string) (float64, bool) {
		args := []string{"cloudwatch", "get-metric-statistics", "--region", region, "--namespace", "AWS/EFS", "--metric-name", "TimeSinceLastSync",
			"--start-time", start, "--end-time", end, "--period", "60", "--statistics", "Maximum", "--output", "json", "--dimensions"}
		out, err := aws.run(append(args, dims...)...)
		var r struct{ Datapoints []struct{ Maximum float64 } }
		if err != nil || json.Unmarshal([]byte(out), &r) != nil || len(r.Datapoints) == 0 {
			return 0, false
		}
		m := 0.0
		for _, d := range r.Datapoints {
			m = max(m, d.Maximum)
		}
		return m, true
	}
	testkit.WaitFor(t, "TimeSinceLastSync datapoints (FileSystemId only)", 30*time.Second, func() bool {
		_, ok := maxLag("us-east-1", "Name=FileSystemId,Value="+src)
		return ok
	})
	testkit.WaitFor(t, "TimeSinceLastSync datapoints (both dimensions)", 30*time.Second, func() bool {
		_, ok := maxLag("us-east-1", "Name=FileSystemId,Value="+src, "Name=DestinationFileSystemId,Value="+dst)
		return ok
	})
	testkit.WaitFor(t, "TimeSinceLastSync measured at the destination", 30*time.Second, func() bool {
		_, ok := maxLag("us-west-2", "Name=FileSystemId,Value="+src, "Name=DestinationFileSystemId,Value="+dst)
		return ok
	})
	if out := aws.must("cloudwatch", "list-metrics", "--namespace", "AWS/EFS", "--metric-name", "TimeSinceLastSync", "--output", "text"); !strings.Contains(out, src) {
		t.Fatalf("list-metrics: %s", out)
	}

	topic := aws.must("sns", "create-topic", "--name", "dr-alerts", "--query", "TopicArn", "--output", "text")
	if topic != "arn:aws:sns:us-east-1:123456789012:dr-alerts" {
		t.Fatalf("topic %s", topic)
	}
	aws.must("sns", "subscribe", "--topic-arn", topic, "--protocol", "http", "--notification-endpoint", rcv.url)
	aws.must("sns", "subscribe", "--topic-arn", topic, "--protocol", "email", "--notification-endpoint", "oncall@regionfs.test")
	testkit.WaitFor(t, "email confirmation", 30*time.Second, func() bool { return mail.find("ConfirmSubscription") != "" })
	link := linkRe.FindString(mail.find("ConfirmSubscription"))
	if _, err := get(link); err != nil {
		t.Fatalf("email confirmation link %q: %v", link, err)
	}
	testkit.WaitFor(t, "both subscriptions confirmed", 30*time.Second, func() bool {
		out, _ := aws.run("sns", "list-subscriptions-by-topic", "--topic-arn", topic, "--query", "Subscriptions[].SubscriptionArn", "--output", "text")
		f := strings.Fields(out)
		return len(f) == 2 && strings.HasPrefix(f[0], "arn:aws:sns") && strings.HasPrefix(f[1], "arn:aws:sns")
	})
	aws.must("cloudwatch", "put-metric-alarm", "--alarm-name", "lag", "--namespace", "AWS/EFS", "--metric-name", "TimeSinceLastSync",
		"--dimensions", "Name=FileSystemId,Value="+src, "--statistic", "Maximum", "--period", "10", "--evaluation-periods", "3",
		"--datapoints-to-alarm", "2", "--threshold", "5", "--comparison-operator", "GreaterThanThreshold", "--treat-missing-data", "breaching",
		"--alarm-actions", topic, "--ok-actions", topic)
	state := func() string {
		out, _ := aws.run("cloudwatch", "describe-alarms", "--alarm-names", "lag", "--query", "MetricAlarms[0].StateValue", "--output", "text")
		return out
	}
	testkit.WaitFor(t, "alarm OK while replicating", 90*time.Second, func() bool { return state() == "OK" })

	seen, seenMail := rcv.count(), mail.count() // notifications from here on are about the outage
	regions["us-west-2"].Kill9()
	t0 := time.Now()
	testkit.WaitFor(t, "alarm ALARM with the destination region down", 120*time.Second, func() bool { return state() == "ALARM" })
	t.Logf("alarm fired %v after the destination region was killed", time.Since(t0).Round(time.Second))
	testkit.WaitFor(t, "signed ALARM notification", 60*time.Second, func() bool { return rcv.alarm("lag", "ALARM", seen) != nil })
	n := rcv.alarm("lag", "ALARM", seen)
	trig, _ := n["Trigger"].(map[string]any)
	if n["OldStateValue"] != "OK" || trig["MetricName"] != "TimeSinceLastSync" || trig["Namespace"] != "AWS/EFS" || !strings.Contains(n["NewStateReason"].(string), "greater than the threshold (5.0)") {
		t.Fatalf("notification %+v", n)
	}
	testkit.WaitFor(t, "ALARM email", 60*time.Second, func() bool { return mail.findSince(`"NewStateValue":"ALARM"`, seenMail) != "" })
	if m := mail.findSince(`"NewStateValue":"ALARM"`, seenMail); !strings.Contains(m, `Subject: ALARM: "lag" in US East (N. Virginia)`) && !strings.Contains(m, "ALARM") {
		t.Fatalf("email %s", m)
	}
	for _, args := range [][]string{
		{"cloudwatch", "get-metric-statistics", "--namespace", "AWS/EFS", "--metric-name", "TimeSinceLastSync", "--dimensions", "Name=FileSystemId,Value=" + src,
			"--start-time", time.Now().UTC().Add(-2 * time.Minute).Format(time.RFC3339), "--end-time", time.Now().UTC().Format(time.RFC3339),
			"--period", "60", "--statistics", "Maximum", "--output", "table"},
		{"cloudwatch", "describe-alarms", "--alarm-names", "lag", "--query", "MetricAlarms[].[AlarmName,StateValue,StateReason]", "--output", "text"},
	} {
		t.Logf("$ aws %s\n%s", strings.Join(args, " "), aws.must(args...))
	}
	// regionfs status shows the alarm's state.
	status := exec.Command(w.bin, "status")
	status.Env = aws.env
	if out, err := status.CombinedOutput(); err != nil || !strings.Contains(string(out), "lag") || !strings.Contains(string(out), "ALARM") ||
		!strings.Contains(string(out), "Maximum > 5, 2 of 3 × 10s") {
		t.Fatalf("regionfs status: %v\n%s", err, out)
	} else {
		t.Logf("regionfs status:\n%s", out)
	}
	// The file system metrics of the source, published every minute.
	testkit.WaitFor(t, "the source's file system metrics in list-metrics", 90*time.Second, func() bool {
		out, _ := aws.run("cloudwatch", "list-metrics", "--namespace", "AWS/EFS", "--dimensions", "Name=FileSystemId,Value="+src,
			"--query", "Metrics[].MetricName", "--output", "text")
		for _, m := range []string{"StorageBytes", "ClientConnections", "DataReadIOBytes", "DataWriteIOBytes", "MetadataIOBytes",
			"TotalIOBytes", "MeteredIOBytes", "PercentIOLimit", "PermittedThroughput", "TimeSinceLastSync"} {
			if !strings.Contains(out, m) {
				return false
			}
		}
		return true
	})
	// The lag keeps growing at the source while the destination is gone.
	if lag, ok := maxLag("us-east-1", "Name=FileSystemId,Value="+src); !ok || lag < 5 {
		t.Fatalf("lag at the source with the destination down: %v %v", lag, ok)
	}

	seen = rcv.count()
	regions["us-west-2"].start()
	testkit.WaitFor(t, "alarm back to OK", 180*time.Second, func() bool { return state() == "OK" })
	testkit.WaitFor(t, "signed OK notification", 60*time.Second, func() bool { return rcv.alarm("lag", "OK", seen) != nil })
	if n := rcv.alarm("lag", "OK", seen); n["OldStateValue"] != "ALARM" {
		t.Fatalf("OK notification %+v", n)
	}
	hist := aws.must("cloudwatch", "describe-alarm-history", "--alarm-name", "lag", "--history-item-type", "StateUpdate", "--query", "AlarmHistoryItems[].HistorySummary", "--output", "text")
	if !strings.Contains(hist, "from OK to ALARM") || !strings.Contains(hist, "from ALARM to OK") {
		t.Fatalf("history: %s", hist)
	}

	// The source region restarts: metrics, the alarm and the topic are
	// still there, and the alarm is evaluated again.
	regions["us-east-1"].Kill9()
	regions["us-east-1"].start()
	if lag, ok := maxLag("us-east-1", "Name=FileSystemId,Value="+src); !ok || lag < 5 {
		t.Fatalf("metrics before the restart: %v %v", lag, ok)
	}
	if s := state(); s != "OK" && s != "ALARM" {
		t.Fatalf("alarm state after restart: %q", s)
	}
	testkit.WaitFor(t, "alarm OK after the source restarted", 120*time.Second, func() bool { return state() == "OK" })
	if out := aws.must("sns", "list-topics", "--query", "Topics[].TopicArn", "--output", "text"); out != topic {
		t.Fatalf("topics after restart: %s", out)
	}
	rcv.mu.Lock()
	bad := rcv.bad
	rcv.mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("messages that did not verify: %v", bad)
	}
}

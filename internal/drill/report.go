package drill

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is a drill as `regionfs drill --json` prints it: the figures a
// script wants first (snake_case), then the details.
type Summary struct {
	DrillID            string   `json:"drill_id"`
	State              string   `json:"state"`
	Succeeded          bool     `json:"succeeded"`
	Failure            string   `json:"failure,omitempty"`
	RPOSeconds         *float64 `json:"rpo_seconds"`
	RPOMethod          string   `json:"rpo_method"`
	RTOSeconds         *float64 `json:"rto_seconds"`
	CloneFileSystemID  string   `json:"clone_file_system_id"`
	CloneIPAddress     string   `json:"clone_ip_address"`
	CloneMountTargetID string   `json:"clone_mount_target_id"`
	CloneNFSPort       int      `json:"clone_nfs_port"`
	CloneReplicaSeq    uint64   `json:"clone_replica_seq"`
	// CloneRecoveryPoint is the source time (epoch seconds) up to which
	// the clone holds every change.
	CloneRecoveryPoint *float64 `json:"clone_recovery_point"`
	Kept               bool     `json:"kept"`
	CleanedUp          bool     `json:"cleaned_up"`
	FileSystemID       string   `json:"file_system_id"`
	Region             string   `json:"region"`
	SourceFileSystemID string   `json:"source_file_system_id"`
	SourceRegion       string   `json:"source_region"`
	SourceReachable    bool     `json:"source_reachable"`
	SourceMessage      string   `json:"source_message,omitempty"`
	Trigger            string   `json:"trigger"`
	Started            float64  `json:"started"`
	Finished           *float64 `json:"finished"`

	ReplicationStatusBefore string  `json:"replication_status_before"`
	ReplicationStatusAfter  string  `json:"replication_status_after"`
	AppliedSeqBefore        uint64  `json:"replica_applied_seq_before"`
	AppliedSeqAfter         uint64  `json:"replica_applied_seq_after"`
	MaxLagSeconds           float64 `json:"replication_max_lag_seconds"`
	LagSamples              int     `json:"replication_lag_samples"`
	ReplicaReadOnly         bool    `json:"replica_read_only"`

	Check    *SummaryCheck  `json:"check,omitempty"`
	Timeline []SummaryEvent `json:"timeline"`
}

// SummaryCheck is a drill's check in a Summary.
type SummaryCheck struct {
	Command  string  `json:"command,omitempty"`
	Passed   bool    `json:"passed"`
	ExitCode int     `json:"exit_code"`
	Seconds  float64 `json:"seconds"`
	By       string  `json:"by"`
	Output   string  `json:"output,omitempty"`
}

// SummaryEvent is a step of the timeline in a Summary.
type SummaryEvent struct {
	Seconds float64 `json:"seconds"`
	Step    string  `json:"step"`
	Message string  `json:"message"`
	Failed  bool    `json:"failed,omitempty"`
}

func epochSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// Summarize returns the Summary of d.
func Summarize(d Drill) Summary {
	s := Summary{
		DrillID: d.DrillID, State: d.State, Succeeded: d.State == StateSucceeded, Failure: d.Failure,
		RPOSeconds: d.RPOSeconds, RPOMethod: d.RPOMethod, RTOSeconds: d.RTOSeconds, Kept: d.Keep, CleanedUp: d.CleanedUp,
		FileSystemID: d.FileSystemID, Region: d.Region, SourceFileSystemID: d.SourceFileSystemID, SourceRegion: d.SourceRegion,
		SourceReachable: d.SourceReachable, SourceMessage: d.SourceMessage, Trigger: d.Trigger, Started: epochSeconds(d.StartTime.Time),
		Timeline: []SummaryEvent{},
	}
	if !d.EndTime.IsZero() {
		f := epochSeconds(d.EndTime.Time)
		s.Finished = &f
	}
	if c := d.Clone; c != nil {
		s.CloneFileSystemID, s.CloneIPAddress, s.CloneMountTargetID, s.CloneNFSPort = c.FileSystemID, c.IPAddress, c.MountTargetID, c.NFSPort
		s.CloneReplicaSeq = c.ReplicaSeq
		if !c.RecoveryPoint.IsZero() {
			f := epochSeconds(c.RecoveryPoint.Time)
			s.CloneRecoveryPoint = &f
		}
	}
	if w := d.Replication; w != nil {
		s.ReplicationStatusBefore, s.ReplicationStatusAfter = w.StatusBefore, w.StatusAfter
		s.AppliedSeqBefore, s.AppliedSeqAfter = w.AppliedSeqBefore, w.AppliedSeqAfter
		s.MaxLagSeconds, s.LagSamples, s.ReplicaReadOnly = w.MaxLagSeconds, w.Samples, w.ReplicaReadOnly
	}
	if c := d.Check; c != nil {
		s.Check = &SummaryCheck{Command: c.Command, Passed: c.Passed, ExitCode: c.ExitCode, Seconds: c.Seconds, By: c.By, Output: c.Output}
	}
	for _, e := range d.Timeline {
		s.Timeline = append(s.Timeline, SummaryEvent{Seconds: e.Seconds, Step: e.Step, Message: e.Message, Failed: e.Failed})
	}
	return s
}

func fmtSeconds(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.3fs", *p)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
}

// summaryLine is the one-line outcome of a finished drill.
func summaryLine(d Drill) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: RPO %s (%s), RTO %s", d.State, fmtSeconds(d.RPOSeconds), orDash(d.RPOMethod), fmtSeconds(d.RTOSeconds))
	if d.SourceUnreachable() {
		fmt.Fprintf(&b, "; source region %s unreachable", d.SourceRegion)
	}
	if d.Failure != "" {
		fmt.Fprintf(&b, "; %s", d.Failure)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// notificationSubject is the SNS subject of a finished drill (at most 100
// characters, as SNS allows).
func notificationSubject(d Drill) string {
	s := fmt.Sprintf("regionfs drill %s of %s (%s): %s", d.DrillID, d.FileSystemID, d.Region, d.State)
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// Text is the report of a drill for a terminal or an email.
func Text(d Drill) string {
	var b bytes.Buffer
	WriteText(&b, d)
	return b.String()
}

// WriteText writes the report of a drill.
func WriteText(w io.Writer, d Drill) {
	fmt.Fprintf(w, "drill %s of %s (%s), replica of %s (%s): %s\n", d.DrillID, d.FileSystemID, d.Region, d.SourceFileSystemID, d.SourceRegion, d.State)
	took := "-"
	if !d.EndTime.IsZero() {
		took = d.EndTime.Sub(d.StartTime.Time).Round(time.Millisecond).String()
	}
	fmt.Fprintf(w, "  started %s, took %s, trigger %s\n", fmtTime(d.StartTime.Time), took, d.Trigger)
	if d.Failure != "" {
		fmt.Fprintf(w, "  FAILED: %s\n", d.Failure)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	rpo := fmtSeconds(d.RPOSeconds)
	switch d.RPOMethod {
	case RPOCanary:
		rpo += fmt.Sprintf("\tcanary committed on the source at seq %d, applied by the replica %s after it was requested", d.Canary.Seq, rpo)
	case RPORecoveryPointAge:
		rpo += "\tthe source region does not answer: age of the replica's recovery point (a failover now loses at least this)"
	case RPOCanaryTimeout:
		rpo = "≥ " + rpo + "\tthe canary did not reach the replica in time"
	}
	if d.MaxRPOSeconds != nil {
		rpo += fmt.Sprintf(" (objective %gs)", *d.MaxRPOSeconds)
	}
	fmt.Fprintf(tw, "  RPO now\t%s\n", rpo)
	rto := fmtSeconds(d.RTOSeconds) + "\tfrom the start to the first acknowledged NFS write on the clone"
	if d.MaxRTOSeconds != nil {
		rto += fmt.Sprintf(" (objective %gs)", *d.MaxRTOSeconds)
	}
	fmt.Fprintf(tw, "  RTO\t%s\n", rto)
	if d.SourceUnreachable() {
		fmt.Fprintf(tw, "  source\t%s\n", d.SourceMessage)
	}
	if c := d.Clone; c != nil {
		where := "no mount target"
		if c.MountTargetID != "" {
			where = fmt.Sprintf("%s:%d (mount target %s)", c.IPAddress, c.NFSPort, c.MountTargetID)
		}
		fate := "kept"
		switch {
		case c.Deleted:
			fate = "deleted"
		case !d.Keep && d.Done():
			fate = "NOT deleted"
		case !d.Done():
			fate = "in use"
		}
		fmt.Fprintf(tw, "  clone\t%s\t%s, of the replica at seq %d (source changes up to %s); %s\n", c.FileSystemID, where, c.ReplicaSeq, fmtTime(c.RecoveryPoint.Time), fate)
	}
	if w := d.Replication; w != nil {
		after := w.StatusAfter
		if after == "" {
			after = "?"
		}
		ro := "read-only all along"
		if !w.ReplicaReadOnly {
			ro = "NOT read-only at some point"
		}
		fmt.Fprintf(tw, "  replication\t%s → %s\tthe replica applied the source's changes from seq %d to %d during the drill; max lag %.3fs over %d samples; %s\n",
			orDash(w.StatusBefore), after, w.AppliedSeqBefore, w.AppliedSeqAfter, w.MaxLagSeconds, w.Samples, ro)
	}
	if c := d.Check; c != nil {
		res := "passed"
		if !c.Passed {
			res = fmt.Sprintf("FAILED (exit %d)", c.ExitCode)
		}
		fmt.Fprintf(tw, "  check\t%s in %.3fs\t(%s) %s\n", res, c.Seconds, c.By, c.Command)
	}
	tw.Flush()
	if c := d.Check; c != nil && strings.TrimSpace(c.Output) != "" {
		fmt.Fprintln(w, "\n  check output:")
		for _, l := range strings.Split(strings.TrimRight(c.Output, "\n"), "\n") {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
	fmt.Fprintln(w, "\nTIMELINE")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, e := range d.Timeline {
		mark := ""
		if e.Failed {
			mark = "!"
		}
		fmt.Fprintf(tw, "  +%.3fs\t%s%s\t%s\n", e.Seconds, mark, e.Step, e.Message)
	}
	tw.Flush()
}

// bar is one phase of the HTML timeline.
type bar struct {
	Label    string
	From, To float64 // seconds since the start
	X, W     float64 // in the drawing
	TX       float64 // where its duration is written
	Inside   bool    // written inside the bar (a long one)
	Y        int
	Failed   bool
	Text     string
}

// phases are the drawn phases: the step that starts one and the step that
// ends it.
var phases = []struct{ label, from, to string }{
	{"canary (RPO)", "start", "canary-replicated"},
	{"clone", "start", "clone-created"},
	{"mount target", "clone-created", "mount-target"},
	{"first NFS write (RTO)", "mount-target", "nfs-write"},
	{"check", "check", "check-passed"},
	{"clean-up", "check-passed", "cleanup"},
}

func timelineBars(d Drill) ([]bar, float64) {
	at := map[string]Event{}
	for _, e := range d.Timeline {
		if _, ok := at[e.Step]; !ok {
			at[e.Step] = e
		}
	}
	end := 0.0
	for _, e := range d.Timeline {
		end = max(end, e.Seconds)
	}
	if end == 0 {
		end = 1
	}
	var out []bar
	for _, p := range phases {
		from, ok := at[p.from]
		if p.label == "clean-up" {
			// After the check, or after the first write when there was none.
			if c, ok2 := at["check-failed"]; ok2 {
				from, ok = c, true
			} else if !ok {
				from, ok = at["nfs-write"]
			}
		}
		if !ok {
			continue
		}
		to, ok := at[p.to]
		failed := false
		switch {
		case ok:
		case p.label == "canary (RPO)":
			if to, ok = at["canary-timeout"]; !ok {
				to, ok = at["source-unreachable"]
			}
			failed = ok
		case p.label == "check":
			to, ok = at["check-failed"]
			failed = ok
		}
		if !ok {
			continue
		}
		out = append(out, bar{Label: p.label, From: from.Seconds, To: to.Seconds, Failed: failed || to.Failed,
			Text: fmt.Sprintf("%.1f ms", (to.Seconds-from.Seconds)*1000)})
	}
	const left, width, row = 170.0, 560.0, 26
	for i := range out {
		out[i].X = left + out[i].From/end*width
		out[i].W = max(1, (out[i].To-out[i].From)/end*width)
		out[i].Y = 10 + i*row
		out[i].TX = out[i].X + out[i].W + 4
		if out[i].TX > left+width-60 && out[i].W > 70 {
			out[i].TX, out[i].Inside = out[i].X+6, true
		}
	}
	return out, end
}

var htmlReport = template.Must(template.New("drill").Funcs(template.FuncMap{
	"secs": fmtSeconds,
	"time": func(t Time) string { return fmtTime(t.Time) },
	"ms":   func(f float64) string { return fmt.Sprintf("%.3f", f) },
	"addi": func(a, b int) int { return a + b },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>regionfs drill {{.D.DrillID}}: {{.D.State}}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#1d2733;padding:0 1em}
h1{font-size:1.35em;margin-bottom:.2em} .sub{color:#5b6775;margin-top:0}
.state{display:inline-block;padding:.1em .6em;border-radius:.3em;color:#fff;font-weight:600}
.SUCCEEDED{background:#1f8a4c} .FAILED{background:#c0392b} .RUNNING,.CHECKING,.CLEANING{background:#b07d12}
.fig{display:flex;gap:1em;margin:1.2em 0} .fig div{flex:1;border:1px solid #d8dee6;border-radius:.4em;padding:.6em 1em}
.fig b{display:block;font-size:1.8em} .fig span{color:#5b6775;font-size:.9em}
table{border-collapse:collapse;width:100%;margin:.8em 0} td,th{text-align:left;padding:.3em .6em;border-bottom:1px solid #e6eaef;vertical-align:top}
th{color:#5b6775;font-weight:500;width:12em} .failed{color:#c0392b} pre{background:#f4f6f8;padding:.8em;overflow:auto}
svg text{font:12px system-ui,sans-serif;fill:#1d2733}
</style></head><body>
<h1>Drill {{.D.DrillID}} <span class="state {{.D.State}}">{{.D.State}}</span></h1>
<p class="sub">{{.D.FileSystemID}} in {{.D.Region}}, replica of {{.D.SourceFileSystemID}} in {{.D.SourceRegion}} · started {{time .D.StartTime}} · trigger {{.D.Trigger}}</p>
{{if .D.Failure}}<p class="failed"><b>Failed:</b> {{.D.Failure}}</p>{{end}}
<div class="fig">
<div><span>RPO now ({{.D.RPOMethod}})</span><b>{{secs .D.RPOSeconds}}</b><span>{{if .D.MaxRPOSeconds}}objective {{secs .D.MaxRPOSeconds}}{{end}}</span></div>
<div><span>RTO (start → first NFS write on the clone)</span><b>{{secs .D.RTOSeconds}}</b><span>{{if .D.MaxRTOSeconds}}objective {{secs .D.MaxRTOSeconds}}{{end}}</span></div>
{{with .D.Replication}}<div><span>replication during the drill</span><b>{{.StatusAfter}}</b><span>max lag {{ms .MaxLagSeconds}} s · seq {{.AppliedSeqBefore}} → {{.AppliedSeqAfter}}</span></div>{{end}}
</div>
{{if .D.SourceUnreachable}}<p class="failed">{{.D.SourceMessage}}</p>{{end}}
<h2>Timeline</h2>
<svg width="760" height="{{addi .Height 24}}" role="img" aria-label="drill timeline">
{{range .Bars}}<text x="4" y="{{addi .Y 14}}">{{.Label}}</text>
<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="18" rx="3" fill="{{if .Failed}}#c0392b{{else}}#2e6fd0{{end}}"><title>{{.Label}}: {{ms .From}} s → {{ms .To}} s</title></rect>
<text x="{{.TX}}" y="{{addi .Y 14}}"{{if .Inside}} style="fill:#fff"{{end}}>{{.Text}}</text>
{{end}}<line x1="170" x2="730" y1="{{.Height}}" y2="{{.Height}}" stroke="#8a96a3"/>
<text x="170" y="{{addi .Height 16}}">0 s</text><text x="690" y="{{addi .Height 16}}">{{ms .End}} s</text>
</svg>
<table><tr><th>+seconds</th><th>step</th><th>what happened</th></tr>
{{range .D.Timeline}}<tr{{if .Failed}} class="failed"{{end}}><td>{{ms .Seconds}}</td><td>{{.Step}}</td><td>{{.Message}}</td></tr>
{{end}}</table>
<h2>Details</h2>
<table>
{{with .D.Canary}}<tr><th>canary</th><td>seq {{.Seq}}; requested {{time .Requested}}, committed {{time .Committed}}, on the replica {{time .Replicated}}</td></tr>{{end}}
{{with .D.Clone}}<tr><th>clone</th><td>{{.FileSystemID}} at {{.IPAddress}}:{{.NFSPort}} (mount target {{.MountTargetID}}); the replica at seq {{.ReplicaSeq}} (source changes up to {{time .RecoveryPoint}}); {{if .Deleted}}deleted{{else}}kept{{end}}</td></tr>{{end}}
{{with .D.Replication}}<tr><th>replication</th><td>{{.StatusBefore}} → {{.StatusAfter}}; applied seq {{.AppliedSeqBefore}} → {{.AppliedSeqAfter}}; max lag {{ms .MaxLagSeconds}} s over {{.Samples}} samples; replica {{if .ReplicaReadOnly}}read-only throughout{{else}}NOT read-only at some point{{end}}</td></tr>{{end}}
{{with .D.Check}}<tr><th>check</th><td>{{if .Passed}}passed{{else}}<span class="failed">failed (exit {{.ExitCode}})</span>{{end}} in {{ms .Seconds}} s ({{.By}}) {{.Command}}</td></tr>{{end}}
<tr><th>subnet</th><td>{{.D.SubnetID}} {{range .D.SecurityGroups}}{{.}} {{end}}</td></tr>
<tr><th>ended</th><td>{{time .D.EndTime}}</td></tr>
</table>
{{with .D.Check}}{{if .Output}}<h2>Check output</h2><pre>{{.Output}}</pre>{{end}}{{end}}
</body></html>
`))

// WriteHTML writes the report of a drill as a self-contained HTML page
// (inline style, the timeline drawn in SVG; no scripts, nothing fetched).
func WriteHTML(w io.Writer, d Drill) error {
	bars, end := timelineBars(d)
	h := 10 + len(bars)*26 + 4
	return htmlReport.Execute(w, struct {
		D      Drill
		Bars   []bar
		End    float64
		Height int
	}{d, bars, end, h})
}

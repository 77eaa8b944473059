package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/refusal"
)

// States of a drill.
const (
	StateRunning   = "RUNNING"   // measuring: canary, clone, mount target, first write
	StateChecking  = "CHECKING"  // the clone answers; waiting for the check
	StateCleaning  = "CLEANING"  // deleting the clone and its mount target
	StateSucceeded = "SUCCEEDED" // done, every measurement within its objective, the check passed
	StateFailed    = "FAILED"    // done; Failure says why
)

// How the RPO was measured.
const (
	// RPOCanary: a canary committed on the source, timed until the replica
	// applied it.
	RPOCanary = "canary"
	// RPORecoveryPointAge: the source region did not answer; the age of
	// the replica's recovery point (at least what a failover would lose).
	RPORecoveryPointAge = "recovery-point-age"
	// RPOCanaryTimeout: the canary did not arrive in time; the RPO is at
	// least the time waited.
	RPOCanaryTimeout = "canary-timeout"
)

// Errors. The API writes them through awserr's table.
var (
	ErrDrillNotFound = errors.New("drill not found")
	// ErrNotDestination: the file system is neither the destination (in
	// this region) nor the source of a replication with its destination
	// here.
	ErrNotDestination = errors.New("not a replication destination in this region")
	// ErrInProgress: a drill of the replica is already running.
	ErrInProgress = errors.New("drill in progress")
	// ErrNotChecking: a check result for a drill that does not wait for
	// one.
	ErrNotChecking = errors.New("drill not waiting for a check")
	ErrBadRequest  = errors.New("bad request")
	// ErrNotReady: the replica has no consistent state yet (initial sync).
	ErrNotReady = errors.New("replica not consistent yet")
	// ErrSourceUnreachable: the source region does not answer.
	ErrSourceUnreachable = errors.New("source region unreachable")
	// ErrClosed: the region is shutting down.
	ErrClosed = errors.New("drills closed")
)

// Error is a refusal whose Message is written for the API's client: one of
// the sentinels above and a public message.
type Error = refusal.Error

// Time is a timestamp written as EFS writes them: epoch seconds, a JSON
// number (with the fraction).
type Time struct{ time.Time }

// MarshalJSON writes epoch seconds.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, float64(t.UnixNano())/1e9, 'f', 6, 64), nil
}

// maxTimeSeconds bounds the epoch seconds of a Time (UnixNano's range).
const maxTimeSeconds = math.MaxInt64 / 1e9

// UnmarshalJSON reads epoch seconds.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("drill: timestamp %q: %w", b, err)
	}
	// MarshalJSON writes UnixNano: a time past its range (years before
	// 1678 or after 2262) would be written as another (FuzzDrillRecord).
	if !(f > -maxTimeSeconds && f < maxTimeSeconds) {
		return fmt.Errorf("drill: timestamp %q out of range", b)
	}
	sec := int64(f)
	t.Time = time.Unix(sec, int64((f-float64(sec))*1e9)).UTC()
	return nil
}

// Drill is one drill: what was asked, every step, and the measurements.
// It is what the API returns and what the history keeps.
type Drill struct {
	DrillID string `json:"DrillId"`
	// FileSystemID is the replica drilled (in Region).
	FileSystemID       string `json:"FileSystemId"`
	SourceFileSystemID string `json:"SourceFileSystemId"`
	SourceRegion       string
	Region             string
	ReplicationID      string `json:"ReplicationId"`
	// Trigger is "api" or "schedule:<name>".
	Trigger   string
	State     string
	StartTime Time
	EndTime   Time `json:",omitzero"`

	// What was asked.
	SubnetID             string   `json:"SubnetId"`
	SecurityGroups       []string `json:",omitempty"`
	Keep                 bool
	HoldSeconds          float64  `json:",omitempty"`
	MaxRPOSeconds        *float64 `json:",omitempty"`
	MaxRTOSeconds        *float64 `json:",omitempty"`
	NotificationTopicARN string   `json:"NotificationTopicArn,omitempty"`

	// Measurements.
	RPOSeconds *float64 `json:",omitempty"`
	RPOMethod  string   `json:",omitempty"`
	RTOSeconds *float64 `json:",omitempty"`
	// SourceReachable is false when the source region did not answer the
	// canary; SourceMessage says what happened.
	SourceReachable bool
	SourceMessage   string       `json:",omitempty"`
	Canary          *Canary      `json:",omitempty"`
	Clone           *Clone       `json:",omitempty"`
	Check           *CheckResult `json:",omitempty"`
	Replication     *During      `json:",omitempty"`

	Timeline []Event
	// Failure says why the drill failed ("" when it did not).
	Failure string `json:",omitempty"`
	// CleanedUp is true once the clone and its mount target are gone.
	CleanedUp bool
}

// Canary is the canary transaction of a drill.
type Canary struct {
	Token string
	// Seq is its journal seq at the source, SourceTime its commit time on
	// the source's clock.
	Seq        uint64
	SourceTime Time `json:",omitzero"`
	// Requested, Committed (the source's answer arrived) and Replicated
	// (the replica applied it) are on this region's clock.
	Requested  Time
	Committed  Time `json:",omitzero"`
	Replicated Time `json:",omitzero"`
}

// Clone is the writable clone a drill made.
type Clone struct {
	FileSystemID  string `json:"FileSystemId"`
	MountTargetID string `json:"MountTargetId,omitempty"`
	IPAddress     string `json:"IpAddress,omitempty"`
	NFSPort       int    `json:"NfsPort,omitempty"`
	// ReplicaSeq is the replica's applied seq when the clone was taken
	// (the clone holds the source's changes up to at least this seq), and
	// RecoveryPoint the source time up to which it holds everything.
	ReplicaSeq    uint64
	RecoveryPoint Time `json:",omitzero"`
	// Answered is when the first NFS write to the clone was acknowledged.
	Answered Time `json:",omitzero"`
	Deleted  bool
}

// CheckResult is the outcome of the drill's check.
type CheckResult struct {
	Command  string `json:",omitempty"`
	Passed   bool
	ExitCode int
	// Output is the check's output (its last 16 KiB).
	Output  string `json:",omitempty"`
	Seconds float64
	// By is "client" (reported through the API) or "region" (a scheduled
	// drill's command, run by the region).
	By string
}

// During is what the replication did while the drill ran.
type During struct {
	StatusBefore string
	StatusAfter  string
	// AppliedSeqBefore and AppliedSeqAfter are the replica's applied seq
	// at the start and the end: replication went on meanwhile.
	AppliedSeqBefore uint64
	AppliedSeqAfter  uint64
	// MaxLagSeconds is the largest lag sampled during the drill, Samples
	// how many samples there were.
	MaxLagSeconds float64
	Samples       int
	// ReplicaReadOnly is true when the replica refused client writes at
	// every sample (it stayed a replica).
	ReplicaReadOnly bool
}

// Event is one step of a drill's timeline.
type Event struct {
	Time    Time
	Seconds float64 // since the start
	Step    string
	Message string
	Failed  bool `json:",omitempty"`
}

// Done reports whether the drill has finished.
func (d *Drill) Done() bool { return d.State == StateSucceeded || d.State == StateFailed }

// SourceUnreachable reports whether the canary found the source region not
// answering. A drill a restart interrupted before its canary was answered
// (SourceReachable still false, no SourceMessage) does not know: it does
// not say so.
func (d Drill) SourceUnreachable() bool { return !d.SourceReachable && d.SourceMessage != "" }

// Input asks for a drill.
type Input struct {
	// FileSystemID is the replica (id or ARN), or the source of a
	// replication whose destination is in this region.
	FileSystemID string
	// SubnetID of the clone's mount target ("" = a subnet of the
	// replica's zone, or the region's first).
	SubnetID       string
	SecurityGroups []string
	// Keep keeps the clone and its mount target after the drill.
	Keep bool
	// Hold makes the drill wait, once the clone answers, for a check
	// result (ReportCheck) for at most this long (0: no check).
	Hold time.Duration
	// Objectives: the drill fails when a measurement exceeds one (0 =
	// none).
	MaxRPO, MaxRTO time.Duration
	// NotificationTopicARN gets a notification when the drill ends.
	NotificationTopicARN string
	// Check is a command the region runs against the clone (scheduled
	// drills only; never from the API).
	Check        string
	CheckTimeout time.Duration
	// Trigger names what started the drill ("" = "api").
	Trigger string
}

// MaxHold bounds how long a drill waits for a check result.
const MaxHold = time.Hour

// Control is the region's control plane (control.Region) as a drill uses
// it.
type Control interface {
	DescribeFileSystem(ctx context.Context, ref string) (control.FileSystem, error)
	DescribeFileSystems(ctx context.Context, q control.FileSystemQuery) ([]control.FileSystem, string, error)
	CloneFileSystem(ctx context.Context, in control.CloneInput) (control.FileSystem, error)
	CreateMountTarget(ctx context.Context, in control.CreateMountTargetInput) (control.MountTarget, error)
	DescribeMountTargets(ctx context.Context, q control.MountTargetQuery) ([]control.MountTarget, string, error)
	DeleteMountTarget(ctx context.Context, id string) error
	DeleteFileSystem(ctx context.Context, ref string) error
}

var _ Control = (*control.Region)(nil)

// Replication is a replication whose destination is in this region, as a
// drill sees it.
type Replication struct {
	ID                 string
	SourceFileSystemID string
	SourceRegion       string
	// FileSystemID is the replica (the destination, in this region).
	FileSystemID  string
	Status        string
	StatusMessage string
	// LastReplicated is the source time up to which the replica holds
	// everything (zero before the initial sync is done).
	LastReplicated time.Time
	AppliedSeq     uint64
	// Consistent is true once the replica has a consistent state (it can
	// be cloned).
	Consistent bool
	// ReadOnly is true while the replica refuses client writes.
	ReadOnly bool
}

// CanaryResult is a canary that the source committed.
type CanaryResult struct {
	Seq        uint64
	SourceTime time.Time // on the source's clock
	Committed  time.Time // when the answer arrived (local clock)
}

// Replicas is the region's replication as a drill uses it.
type Replicas interface {
	// Destination finds the replication whose destination, in this
	// region, is fsID (id or ARN), or whose source is fsID.
	Destination(ctx context.Context, fsID string) (Replication, error)
	// Status returns the replication's current state.
	Status(ctx context.Context, id string) (Replication, error)
	// Canary asks the source region to commit a canary transaction
	// holding token on the source (ErrSourceUnreachable when it does not
	// answer).
	Canary(ctx context.Context, id, token string) (CanaryResult, error)
	// WaitCanary waits until the replica has applied the canary at seq and
	// holds token, and returns when it saw it.
	WaitCanary(ctx context.Context, id string, seq uint64, token string) (time.Time, error)
}

// Datum is one CloudWatch datapoint of a finished drill.
type Datum struct {
	Name       string
	Unit       string // Seconds or Count
	Value      float64
	Dimensions map[string]string
}

// MetricsNamespace is the CloudWatch namespace of drill metrics.
const MetricsNamespace = "regionfs/Drill"

// Publisher receives what a finished drill publishes: CloudWatch
// datapoints (MetricsNamespace) and SNS notifications.
type Publisher interface {
	PutMetrics(ctx context.Context, data []Datum) error
	Notify(ctx context.Context, topicARN, subject, message string) error
}

func newDrillID() string {
	b := make([]byte, 9)
	rand.Read(b)
	return "drill-" + hex.EncodeToString(b)[:17]
}

func newToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func seconds(d time.Duration) *float64 {
	v := d.Seconds()
	return &v
}

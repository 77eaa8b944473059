package replication

import (
	"slices"
	"time"
)

// State is a replication's status (the words are those the EFS API
// shows, which the control plane passes through).
type State string

// States.
const (
	StateEnabling State = "ENABLING" // initial sync in progress
	StateEnabled  State = "ENABLED"
	StatePaused   State = "PAUSED" // link down past PauseAfter
	StateError    State = "ERROR"  // cannot continue: needs a resync or operator action
	StateDeleting State = "DELETING"
)

// Role says which end of a replication a status describes.
type Role string

// Roles.
const (
	RoleSource      Role = "source"
	RoleDestination Role = "destination"
)

// SyncProgress is the progress of an initial sync.
type SyncProgress struct {
	Active     bool
	Done       bool
	BytesDone  uint64
	BytesTotal uint64
	FilesDone  uint64
	FilesTotal uint64
	// KeysDone and KeysTotal count the keys a resync by journal sends
	// (KeysTotal is 0 while unknown, and for a resync by checksums).
	KeysDone  uint64
	KeysTotal uint64
	Started   time.Time
	Finished  time.Time
	// Method of a resync: "journal" (keys touched since the fork) or
	// "checksums" (range checksums); empty for an initial sync.
	Method string
	// Stalls counts the times the source sent again from the
	// destination's cursor because that had stopped moving while the
	// source had nothing left to send (outbound.syncStallAfter).
	Stalls uint64
}

// Status is what one end knows of a replication.
type Status struct {
	ID         string
	Role       Role
	FS         string // local file system (engine name)
	PeerRegion string
	PeerFS     string
	State      State
	Message    string

	// LastReplicated is the source time up to which the replica durably
	// holds everything; zero until the initial sync is done.
	LastReplicated time.Time
	// SourceDurable is the source's durable seq (as last heard, on the
	// destination); Applied the replica's applied seq (as last acked, on
	// the source).
	SourceDurable uint64
	Applied       uint64
	AppliedEpoch  uint64

	PendingRecords uint64
	PendingBytes   uint64
	ShippedRecords uint64
	ShippedBytes   uint64
	ShippedBlocks  uint64
	AppliedRecords uint64
	// ApplyLag (destination) is the apply lag of every record this
	// process applied in steady state: durable at the source → readable
	// here.
	ApplyLag LagHistogram

	Sync SyncProgress

	// Verify is the newest verification pass's outcome (zero: none yet);
	// the counters count passes, passes that found a difference and
	// passes that could not complete.
	Verify VerifyResult
	// VerifyFound are the newest passes that found a difference (up to
	// verifyFoundKept, oldest first), kept when later passes are clean:
	// what was found and how it was repaired.
	VerifyFound      []VerifyResult
	VerifyPasses     uint64
	VerifyMismatches uint64
	VerifyFailures   uint64

	LinkUp        bool
	LinkDownSince time.Time
	LastContact   time.Time
	// ReceivingSince (destination) is when this process began receiving
	// the replication (its start, or the replica's opening here later):
	// LastContact is this process's, and no contact before this instant
	// can be vouched for.
	ReceivingSince time.Time
	LastError      string
	// PeerWaiting (source) is why the destination says it applies
	// nothing of what it receives (its data disk is full), as it last
	// said: "" when it applies, or does not say (featureWaitReason).
	PeerWaiting string
	// linkReason is LastError in public words (outbound only).
	linkReason string
	// formatRefused: the destination's store format is too old
	// (formatError); beforeRefused is the state to go back to once a
	// stream to it passes the check.
	formatRefused bool
	beforeRefused State
	// released: the retention limits released the destination's pin
	// (checkRetention): it needs a resync, and until one begins no
	// acknowledgement pins the journal again at its old applied point
	// (each new stream's first acknowledgement did, a full replica's
	// streams ending and starting again). Kept across restarts
	// (Progress.Released).
	released bool
}

// Lag returns how far behind the replica is at now (0 before the first
// consistent point is known).
func (s Status) Lag(now time.Time) time.Duration {
	if s.LastReplicated.IsZero() {
		return 0
	}
	if d := now.Sub(s.LastReplicated); d > 0 {
		return d
	}
	return 0
}

// setVerify adds the verification counters and, when the newest pass found
// a difference and nothing more urgent is to be said, its message.
func (s *Status) setVerify(v verifyStats, repairing bool) {
	s.Verify, s.VerifyPasses, s.VerifyMismatches, s.VerifyFailures = v.Last, v.Passes, v.Mismatches, v.Failures
	s.VerifyFound = slices.Clone(v.Found)
	if m := verifyMessage(v, repairing); m != "" && (s.Message == "" || repairing) {
		s.Message = m
	}
}

package engine

import (
	"encoding/json"
	"fmt"
	"strings"
)

// superblock is the replicated, file-system-wide constant state ('M' "super").
type superblock struct {
	Version   int    `json:"v"`
	BlockSize int    `json:"bs"`
	HashAlg   int    `json:"alg"`
	Lineage   []byte `json:"lineage"` // 16 bytes: the file system's lineage, shared by replicas
	HashKey   []byte `json:"hkey"`    // keyed BLAKE3 id key, shared by the lineage
	MACKey    []byte `json:"mac"`     // key for NFS handle MACs, shared by replicas
	InlineMax int    `json:"inline"`
	Created   int64  `json:"created"`
}

const superVersion = 1

func (s *superblock) encode() []byte {
	b, _ := json.Marshal(s) // plain struct
	return b
}

func decodeSuper(b []byte) (*superblock, error) {
	var s superblock
	if err := json.Unmarshal(b, &s); err != nil || s.Version < 1 {
		return nil, fmt.Errorf("%w: superblock", ErrCorrupt)
	}
	if s.Version > superVersion {
		return nil, fmt.Errorf("superblock format %d is newer than this binary's %d", s.Version, superVersion)
	}
	if s.BlockSize < MinBlockSize || s.BlockSize > MaxBlockSize || s.BlockSize&(s.BlockSize-1) != 0 ||
		len(s.HashKey) != 32 || len(s.MACKey) != 32 || s.InlineMax < 0 || s.InlineMax > s.BlockSize {
		return nil, fmt.Errorf("%w: superblock fields", ErrCorrupt)
	}
	return &s, nil
}

// EpochStart is one entry of a file system's epoch history: epoch Epoch
// began with journal sequence StartSeq.
type EpochStart struct {
	Epoch    uint64 `json:"e"`
	StartSeq uint64 `json:"s"`
}

func encodeEpochs(h []EpochStart) []byte {
	b, _ := json.Marshal(h)
	return b
}

func decodeEpochs(b []byte) ([]EpochStart, error) {
	var h []EpochStart
	if err := json.Unmarshal(b, &h); err != nil || len(h) == 0 {
		return nil, fmt.Errorf("%w: epoch history", ErrCorrupt)
	}
	for i := 1; i < len(h); i++ {
		if h[i].Epoch <= h[i-1].Epoch || h[i].StartSeq < h[i-1].StartSeq {
			return nil, fmt.Errorf("%w: epoch history out of order", ErrCorrupt)
		}
	}
	return h, nil
}

// Mode is what a file system accepts.
type Mode uint8

const (
	// ModePrimary accepts client writes at its epoch.
	ModePrimary Mode = 1
	// ModeReplica accepts only journal records from its source.
	ModeReplica Mode = 2
	// ModeFenced accepts nothing: it learned of a newer epoch elsewhere.
	ModeFenced Mode = 3
)

func (m Mode) String() string {
	switch m {
	case ModePrimary:
		return "primary"
	case ModeReplica:
		return "replica"
	case ModeFenced:
		return "fenced"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Stop is a reason a primary stopped taking writes at its own epoch
// (Replica.Stop): each is recorded in the mode record, durable with the
// stop, and lifted on its own (Replica.Resume); the file system takes
// writes again once none is left and it learned of no newer epoch.
type Stop uint8

const (
	// StopLease: its replication's lease ran out, or the process started
	// with a replication whose destination has not answered yet. The
	// destination's next acknowledgement lifts it.
	StopLease Stop = 1 << iota
	// StopPlanned: a planned failover is under way. Only its undo lifts
	// it (never an acknowledgement); its completion fences the file
	// system at the promoted destination's epoch.
	StopPlanned
)

func (s Stop) String() string {
	var parts []string
	if s&StopLease != 0 {
		parts = append(parts, "lease")
	}
	if s&StopPlanned != 0 {
		parts = append(parts, "planned failover")
	}
	if rest := s &^ (StopLease | StopPlanned); rest != 0 {
		parts = append(parts, fmt.Sprintf("stop(%#x)", uint8(rest)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

// modeRecord is the local mode of a file system ('l' fsid 'm'), JSON.
type modeRecord struct {
	Mode  Mode   `json:"mode"`
	Epoch uint64 `json:"epoch"` // the epoch this file system writes at (primary, fenced)
	// Learned is the newest epoch heard of elsewhere (fencing).
	Learned uint64 `json:"learned,omitempty"`
	// Stops are the reasons a primary stopped itself at its own epoch
	// (Stop): written with the stop, in the same record, so that a
	// restart knows which of them lifts it.
	Stops Stop `json:"stops,omitempty"`
	// Replica/applied state.
	AppliedEpoch uint64 `json:"aepoch,omitempty"`
	AppliedSeq   uint64 `json:"aseq,omitempty"`
	AppliedTime  int64  `json:"atime,omitempty"`
	// Recovery point recorded at promotion.
	RecoverySeq  uint64 `json:"rseq,omitempty"`
	RecoveryTime int64  `json:"rtime,omitempty"`
	// Abandoned: the promotion abandoned a resync (AbandonResync);
	// Shared is where its history and the resync's source's forked (0:
	// not known). Recorded with the promotion, so that a control plane
	// that completes the failover after a restart (Promoted) reports the
	// split point, not the file system's own last seq.
	Abandoned bool   `json:"abandoned,omitempty"`
	Shared    uint64 `json:"shared,omitempty"`
	// Initial sync (sync.go): chunks are being ingested; records from
	// SyncBase+1 replay after the last one; the replica is consistent once
	// it has applied ConsistentSeq; the next chunk starts at SyncCursor.
	SyncActive    bool   `json:"sync,omitempty"`
	SyncBase      uint64 `json:"sbase,omitempty"`
	SyncCursor    []byte `json:"scur,omitempty"`
	ConsistentSeq uint64 `json:"cseq,omitempty"`
	// Resync: the sync replaces ranges of an existing state (resync.go).
	Resync bool `json:"resync,omitempty"`
}

func (m *modeRecord) encode() []byte {
	b, _ := json.Marshal(m)
	return b
}

func decodeMode(b []byte) (*modeRecord, error) {
	var m modeRecord
	if err := json.Unmarshal(b, &m); err != nil || m.Mode < ModePrimary || m.Mode > ModeFenced {
		return nil, fmt.Errorf("%w: mode record", ErrCorrupt)
	}
	return &m, nil
}

package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// formatVersion is the version of the control records this code writes.
const formatVersion = 1

// Keys, all under 'c' (the engine's store holds the other prefixes).
const (
	keyVersion     = 'v'
	keyFileSystem  = 'f'
	keyMountTarget = 'm'
	keyAccessPoint = 'a'
	keyPrefs       = 'p'
)

func recordKey(kind byte, id string) []byte {
	return append([]byte{'c', kind}, id...)
}

// fsRecord is a file system as stored.
type fsRecord struct {
	ID                string            `json:"id"`
	Token             string            `json:"token"`
	Created           time.Time         `json:"created"`
	State             LifeCycleState    `json:"state"`
	Since             time.Time         `json:"since"` // when State began
	Performance       string            `json:"performance"`
	Encrypted         bool              `json:"encrypted,omitempty"`
	KMSKeyID          string            `json:"kms,omitempty"` // keyring key id
	Throughput        string            `json:"throughput"`
	Provisioned       float64           `json:"provisioned,omitempty"`
	AZ                string            `json:"az,omitempty"`
	AZID              string            `json:"azId,omitempty"`
	Tags              []Tag             `json:"tags,omitempty"`
	Protection        string            `json:"protection"`
	Lifecycle         []LifecyclePolicy `json:"lifecycle,omitempty"`
	Backup            string            `json:"backup,omitempty"` // "" = no backup policy
	BackupSince       time.Time         `json:"backupSince"`
	Policy            string            `json:"policy,omitempty"`
	ThroughputChanged time.Time         `json:"throughputChanged"`
	Role              string            `json:"role,omitempty"`    // replication role (hook)
	Replica           bool              `json:"replica,omitempty"` // engine FS is a replica
	CopyOf            string            `json:"copyOf,omitempty"`  // read-only engine clone of another FS
	CloneOf           string            `json:"cloneOf,omitempty"` // writable engine clone of another FS
}

func (f *fsRecord) key() string { return sortKey(f.Created, f.ID) }

// mtRecord is a mount target as stored. It keeps its subnet's zone and VPC
// so it stays describable if the subnet leaves the configuration.
type mtRecord struct {
	ID             string         `json:"id"`
	FileSystemID   string         `json:"fs"`
	SubnetID       string         `json:"subnet"`
	Created        time.Time      `json:"created"`
	State          LifeCycleState `json:"state"`
	Since          time.Time      `json:"since"`
	IP             netip.Addr     `json:"ip"`
	ENI            string         `json:"eni"`
	AZ             string         `json:"az"`
	AZID           string         `json:"azId"`
	VPC            string         `json:"vpc"`
	SecurityGroups []string       `json:"sgs"`
}

func (m *mtRecord) key() string { return sortKey(m.Created, m.ID) }

// apRecord is an access point as stored.
type apRecord struct {
	ID           string         `json:"id"`
	FileSystemID string         `json:"fs"`
	Token        string         `json:"token"`
	Created      time.Time      `json:"created"`
	State        LifeCycleState `json:"state"`
	Since        time.Time      `json:"since"`
	Tags         []Tag          `json:"tags,omitempty"`
	PosixUser    *PosixUser     `json:"posix,omitempty"`
	Root         RootDirectory  `json:"root"`
}

func (a *apRecord) key() string { return sortKey(a.Created, a.ID) }

type prefsRecord struct {
	ResourceIDType string `json:"resourceIdType"`
}

type versionRecord struct {
	Version int `json:"version"`
}

// sortKey orders resources by creation time, then id; listings page on it.
func sortKey(t time.Time, id string) string {
	return fmt.Sprintf("%020d/%s", t.UnixNano(), id)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Records hold only plain data: a failure is a broken invariant.
		panic(fmt.Sprintf("control: encode %T: %v", v, err))
	}
	return b
}

// load reads every control record.
func (r *Region) load() error {
	v, err := r.o.KV.Get(recordKey(keyVersion, ""))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		b := r.o.KV.NewBatch()
		b.Set(recordKey(keyVersion, ""), mustJSON(versionRecord{Version: formatVersion}))
		err = b.Commit(true)
		b.Close()
		if err != nil {
			return fmt.Errorf("control: write format version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("control: read format version: %w", err)
	default:
		var vr versionRecord
		if err := json.Unmarshal(v, &vr); err != nil {
			return fmt.Errorf("control: format version record: %w", err)
		}
		if vr.Version > formatVersion {
			return fmt.Errorf("control: records of format %d are newer than this server (%d)", vr.Version, formatVersion)
		}
	}
	err = kv.Scan(r.o.KV, []byte{'c'}, []byte{'d'}, func(k, val []byte) error {
		if len(k) < 2 {
			return nil
		}
		if err := r.loadRecord(k[1], string(k[2:]), val); err != nil {
			return fmt.Errorf("record %q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("control: %w", err)
	}
	return nil
}

func (r *Region) loadRecord(kind byte, id string, val []byte) error {
	switch kind {
	case keyVersion:
		return nil
	case keyFileSystem:
		var f fsRecord
		if err := json.Unmarshal(val, &f); err != nil {
			return err
		}
		r.fss[id] = &f
		r.tokens[f.Token] = id
	case keyMountTarget:
		var m mtRecord
		if err := json.Unmarshal(val, &m); err != nil {
			return err
		}
		r.mts[id] = &m
	case keyAccessPoint:
		var a apRecord
		if err := json.Unmarshal(val, &a); err != nil {
			return err
		}
		r.aps[id] = &a
		r.apTokens[a.Token] = id
	case keyPrefs:
		return json.Unmarshal(val, &r.prefs)
	default:
		return fmt.Errorf("unknown record kind %q", kind)
	}
	return nil
}

// txn collects the writes of one change and the in-memory updates to make
// once they are durable. It is used with r.mu held.
type txn struct {
	r     *Region
	b     kv.Batch
	after []func()
}

func (r *Region) begin() *txn { return &txn{r: r, b: r.o.KV.NewBatch()} }

func (t *txn) putFS(f *fsRecord) {
	t.b.Set(recordKey(keyFileSystem, f.ID), mustJSON(f))
	t.after = append(t.after, func() {
		if old, ok := t.r.fss[f.ID]; ok && old.Token != f.Token {
			delete(t.r.tokens, old.Token)
		}
		t.r.fss[f.ID] = f
		t.r.tokens[f.Token] = f.ID
	})
}

func (t *txn) deleteFS(f *fsRecord) {
	t.b.Delete(recordKey(keyFileSystem, f.ID))
	t.after = append(t.after, func() {
		delete(t.r.fss, f.ID)
		if t.r.tokens[f.Token] == f.ID {
			delete(t.r.tokens, f.Token)
		}
	})
}

func (t *txn) putMT(m *mtRecord) {
	t.b.Set(recordKey(keyMountTarget, m.ID), mustJSON(m))
	t.after = append(t.after, func() { t.r.mts[m.ID] = m })
}

func (t *txn) deleteMT(m *mtRecord) {
	t.b.Delete(recordKey(keyMountTarget, m.ID))
	t.after = append(t.after, func() { delete(t.r.mts, m.ID) })
}

func (t *txn) putAP(a *apRecord) {
	t.b.Set(recordKey(keyAccessPoint, a.ID), mustJSON(a))
	t.after = append(t.after, func() {
		t.r.aps[a.ID] = a
		t.r.apTokens[a.Token] = a.ID
	})
}

func (t *txn) deleteAP(a *apRecord) {
	t.b.Delete(recordKey(keyAccessPoint, a.ID))
	t.after = append(t.after, func() {
		delete(t.r.aps, a.ID)
		if t.r.apTokens[a.Token] == a.ID {
			delete(t.r.apTokens, a.Token)
		}
	})
}

func (t *txn) putPrefs(p prefsRecord) {
	t.b.Set(recordKey(keyPrefs, ""), mustJSON(p))
	t.after = append(t.after, func() { t.r.prefs = p })
}

// commit makes the writes durable, then applies the in-memory updates;
// on failure nothing changes.
func (t *txn) commit() error {
	defer t.b.Close()
	if !t.b.Empty() {
		if err := t.b.Commit(true); err != nil {
			return fmt.Errorf("control: commit: %w", err)
		}
	}
	for _, f := range t.after {
		f()
	}
	return nil
}

package cfn

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Keys, under 'o' (orchestration) of the server's store; values are JSON:
//
//	'o' 's' stack id            stack record (template, parameters, resources, operation in progress)
//	'o' 'e' stack id 0 seq(8)   stack event
//	'o' 'c' change set id       change set record
const (
	keyStack     = 's'
	keyEvent     = 'e'
	keyChangeSet = 'c'
)

func stackKey(id string) []byte { return append([]byte{'o', keyStack}, id...) }
func eventKey(stackID string, seq uint64) []byte {
	k := append([]byte{'o', keyEvent}, stackID...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}
func eventPrefix(stackID string) []byte {
	return append(append([]byte{'o', keyEvent}, stackID...), 0)
}
func changeSetKey(id string) []byte { return append([]byte{'o', keyChangeSet}, id...) }

// Stack statuses.
const (
	CreateInProgress                        = "CREATE_IN_PROGRESS"
	CreateFailed                            = "CREATE_FAILED"
	CreateComplete                          = "CREATE_COMPLETE"
	RollbackInProgress                      = "ROLLBACK_IN_PROGRESS"
	RollbackFailed                          = "ROLLBACK_FAILED"
	RollbackComplete                        = "ROLLBACK_COMPLETE"
	DeleteInProgress                        = "DELETE_IN_PROGRESS"
	DeleteFailed                            = "DELETE_FAILED"
	DeleteComplete                          = "DELETE_COMPLETE"
	DeleteSkipped                           = "DELETE_SKIPPED"
	UpdateInProgress                        = "UPDATE_IN_PROGRESS"
	UpdateCompleteCleanupInProgress         = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
	UpdateComplete                          = "UPDATE_COMPLETE"
	UpdateFailed                            = "UPDATE_FAILED"
	UpdateRollbackInProgress                = "UPDATE_ROLLBACK_IN_PROGRESS"
	UpdateRollbackFailed                    = "UPDATE_ROLLBACK_FAILED"
	UpdateRollbackCompleteCleanupInProgress = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
	UpdateRollbackComplete                  = "UPDATE_ROLLBACK_COMPLETE"
	ReviewInProgress                        = "REVIEW_IN_PROGRESS"
)

// stackRecord is a stack as stored.
type stackRecord struct {
	ID                    string                    `json:"id"`
	Name                  string                    `json:"name"`
	Status                string                    `json:"status"`
	Reason                string                    `json:"reason,omitempty"`
	Created               time.Time                 `json:"created"`
	Updated               time.Time                 `json:"updated"`
	Deleted               time.Time                 `json:"deleted"`
	Description           string                    `json:"description,omitempty"`
	Template              string                    `json:"template,omitempty"`
	Params                []ParamValue              `json:"params,omitempty"`
	Tags                  []Tag                     `json:"tags,omitempty"`
	Capabilities          []string                  `json:"caps,omitempty"`
	NotificationARNs      []string                  `json:"notify,omitempty"`
	DisableRollback       bool                      `json:"disableRollback,omitempty"`
	OnFailure             string                    `json:"onFailure,omitempty"`
	TimeoutMinutes        int                       `json:"timeout,omitempty"`
	TerminationProtection bool                      `json:"termProtect,omitempty"`
	RoleARN               string                    `json:"role,omitempty"`
	Outputs               []Output                  `json:"outputs,omitempty"`
	Resources             map[string]*resourceState `json:"resources,omitempty"`
	ChangeSetID           string                    `json:"changeSet,omitempty"`
	Op                    *operation                `json:"op,omitempty"`
	// Tokens maps each ClientRequestToken used on the stack to the
	// operation it started.
	Tokens map[string]string `json:"tokens,omitempty"`
	// ImportNames are the exports the stack's template imports.
	ImportNames []string `json:"imports,omitempty"`
	LastOpID    string   `json:"lastOp,omitempty"`
	LastOp      string   `json:"lastOpType,omitempty"`
	EventSeq    uint64   `json:"eventSeq"`
	OpCounter   uint64   `json:"opCounter"`
}

// ParamValue is a parameter's value in a stack or change set.
type ParamValue struct {
	Key   string `json:"k"`
	Value string `json:"v"`
	// NoEcho values are shown as ****.
	NoEcho bool `json:"noEcho,omitempty"`
}

// Tag is a stack tag.
type Tag struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// Output is an evaluated output.
type Output struct {
	Key         string `json:"k"`
	Value       string `json:"v"`
	Description string `json:"d,omitempty"`
	ExportName  string `json:"export,omitempty"`
}

// resourceState is a resource of a stack as stored.
type resourceState struct {
	LogicalID           string            `json:"id"`
	Type                string            `json:"type"`
	PhysicalID          string            `json:"physical,omitempty"`
	Status              string            `json:"status"`
	Reason              string            `json:"reason,omitempty"`
	Updated             time.Time         `json:"updated"`
	Props               map[string]any    `json:"props,omitempty"`
	Attrs               map[string]string `json:"attrs,omitempty"`
	DeletionPolicy      string            `json:"deletionPolicy,omitempty"`
	UpdateReplacePolicy string            `json:"replacePolicy,omitempty"`
	Metadata            any               `json:"metadata,omitempty"`
	// Token is the idempotency token of the physical resource's creation.
	Token string `json:"token,omitempty"`
}

func (r *resourceState) clone() *resourceState {
	c := *r
	if r.Props != nil {
		c.Props = deepCopy(r.Props).(map[string]any)
	}
	if r.Attrs != nil {
		c.Attrs = make(map[string]string, len(r.Attrs))
		for k, v := range r.Attrs {
			c.Attrs[k] = v
		}
	}
	return &c
}

// Operation kinds.
const (
	opCreate = "CREATE_STACK"
	opUpdate = "UPDATE_STACK"
	opDelete = "DELETE_STACK"
)

// operation is a stack operation under way; it holds everything needed to
// resume it after a restart.
type operation struct {
	Kind  string `json:"kind"`
	ID    string `json:"id"`
	Token string `json:"token,omitempty"`
	// Phase: apply, cleanup, rollback, rollback-cleanup, delete.
	Phase string `json:"phase"`
	// Update: the previous template, parameters, outputs and resource
	// states (for a rollback) and the target.
	PrevTemplate string                    `json:"prevTemplate,omitempty"`
	PrevParams   []ParamValue              `json:"prevParams,omitempty"`
	PrevOutputs  []Output                  `json:"prevOutputs,omitempty"`
	PrevTags     []Tag                     `json:"prevTags,omitempty"`
	PrevDesc     string                    `json:"prevDesc,omitempty"`
	Prev         map[string]*resourceState `json:"prev,omitempty"`
	// Touched lists the resources this operation changed (in order), for
	// a rollback.
	Touched []string `json:"touched,omitempty"`
	// Retired are physical resources replaced or removed by an update,
	// deleted in the cleanup phase (or kept by a rollback).
	Retired []*resourceState `json:"retired,omitempty"`
	// Failed is the resources whose failure started a rollback.
	Failed []string `json:"failed,omitempty"`
	// Retain: resources DeleteStack was asked to keep.
	Retain []string `json:"retain,omitempty"`
	// Actions: what the update did to each resource (add, replace,
	// modify); RolledBack: those a rollback has restored.
	Actions    map[string]string `json:"actions,omitempty"`
	RolledBack []string          `json:"rolledBack,omitempty"`
}

// event is a stack event as stored.
type event struct {
	ID         string    `json:"id"`
	StackID    string    `json:"stack"`
	StackName  string    `json:"stackName"`
	LogicalID  string    `json:"logical"`
	PhysicalID string    `json:"physical,omitempty"`
	Type       string    `json:"type"`
	Time       time.Time `json:"time"`
	Status     string    `json:"status"`
	Reason     string    `json:"reason,omitempty"`
	Props      string    `json:"props,omitempty"`
	Token      string    `json:"token,omitempty"`
	OpID       string    `json:"op,omitempty"`
	Seq        uint64    `json:"seq"`
}

// Change set statuses.
const (
	csCreateComplete   = "CREATE_COMPLETE"
	csFailed           = "FAILED"
	csDeleteComplete   = "DELETE_COMPLETE"
	execAvailable      = "AVAILABLE"
	execUnavailable    = "UNAVAILABLE"
	execInProgress     = "EXECUTE_IN_PROGRESS"
	execComplete       = "EXECUTE_COMPLETE"
	execFailed         = "EXECUTE_FAILED"
	execObsolete       = "OBSOLETE"
	changeSetCreate    = "CREATE"
	changeSetUpdate    = "UPDATE"
	noChangesReason    = "The submitted information didn't contain changes. Submit different information to create a change set."
	noUpdatesPerformed = "No updates are to be performed."
)

// changeSetRecord is a change set as stored.
type changeSetRecord struct {
	ID               string       `json:"id"`
	Name             string       `json:"name"`
	StackID          string       `json:"stack"`
	StackName        string       `json:"stackName"`
	Type             string       `json:"type"`
	Status           string       `json:"status"`
	ExecStatus       string       `json:"exec"`
	Reason           string       `json:"reason,omitempty"`
	Description      string       `json:"description,omitempty"`
	Created          time.Time    `json:"created"`
	Template         string       `json:"template"`
	Params           []ParamValue `json:"params,omitempty"`
	Tags             []Tag        `json:"tags,omitempty"`
	Capabilities     []string     `json:"caps,omitempty"`
	NotificationARNs []string     `json:"notify,omitempty"`
	Changes          []Change     `json:"changes,omitempty"`
	ClientToken      string       `json:"token,omitempty"`
	OnStackFailure   string       `json:"onFailure,omitempty"`
	RoleARN          string       `json:"role,omitempty"`
}

// Change is one resource change of a change set.
type Change struct {
	Action      string         `json:"action"` // Add, Modify, Remove
	LogicalID   string         `json:"id"`
	PhysicalID  string         `json:"physical,omitempty"`
	Type        string         `json:"type"`
	Replacement string         `json:"replacement,omitempty"` // True, False, Conditional
	Scope       []string       `json:"scope,omitempty"`
	Details     []ChangeDetail `json:"details,omitempty"`
}

// ChangeDetail is one property change.
type ChangeDetail struct {
	Name               string `json:"name"`
	RequiresRecreation string `json:"recreate"` // Never, Conditionally, Always
	Evaluation         string `json:"eval"`     // Static, Dynamic
	ChangeSource       string `json:"source"`   // DirectModification, ResourceReference, ParameterReference, ResourceAttribute
	CausingEntity      string `json:"cause,omitempty"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Records hold plain data (template values are JSON values): a
		// failure is a broken invariant.
		panic(fmt.Sprintf("cfn: encode %T: %v", v, err))
	}
	return b
}

// load reads every stack and change set.
func (e *Engine) load() error {
	err := kv.Scan(e.o.KV, []byte{'o', keyStack}, []byte{'o', keyStack + 1}, func(k, v []byte) error {
		var s stackRecord
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("stack %q: %w", k, err)
		}
		if s.Resources == nil {
			s.Resources = map[string]*resourceState{}
		}
		e.stacks[s.ID] = &s
		if s.Status != DeleteComplete {
			e.byName[s.Name] = s.ID
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cfn: load stacks: %w", err)
	}
	err = kv.Scan(e.o.KV, []byte{'o', keyChangeSet}, []byte{'o', keyChangeSet + 1}, func(k, v []byte) error {
		var c changeSetRecord
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("change set %q: %w", k, err)
		}
		e.changeSets[c.ID] = &c
		return nil
	})
	if err != nil {
		return fmt.Errorf("cfn: load change sets: %w", err)
	}
	return nil
}

// saveLocked makes a stack (and events, change sets) durable in one synced
// batch. Callers hold e.mu.
func (e *Engine) saveLocked(s *stackRecord, evs []event, css ...*changeSetRecord) error {
	b := e.o.KV.NewBatch()
	defer b.Close()
	b.Set(stackKey(s.ID), mustJSON(s))
	for _, ev := range evs {
		b.Set(eventKey(s.ID, ev.Seq), mustJSON(ev))
	}
	for _, c := range css {
		if c.Status == csDeleteComplete {
			b.Delete(changeSetKey(c.ID))
		} else {
			b.Set(changeSetKey(c.ID), mustJSON(c))
		}
	}
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("cfn: commit: %w", err)
	}
	return nil
}

// events returns a stack's events, newest first.
func (e *Engine) events(stackID string) ([]event, error) {
	p := eventPrefix(stackID)
	hi := append([]byte(nil), p...)
	hi[len(hi)-1]++
	it, err := e.o.KV.NewIter(p, hi)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []event
	for ok := it.Last(); ok; ok = it.Prev() {
		v, err := it.Value()
		if err != nil {
			return nil, err
		}
		var ev event
		if err := json.Unmarshal(v, &ev); err != nil {
			return nil, fmt.Errorf("cfn: event: %w", err)
		}
		out = append(out, ev)
	}
	return out, it.Error()
}

// Imports returns the exports the stack imports.
func (s *stackRecord) Imports() []string { return s.ImportNames }

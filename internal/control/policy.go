package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxLifecyclePolicies bounds a lifecycle configuration; MaxPolicyLength a
// file system policy (characters).
const (
	MaxLifecyclePolicies = 3
	MaxPolicyLength      = 20000
)

// PutLifecycleConfiguration replaces a file system's lifecycle policies
// (an empty list removes them). Each policy sets exactly one transition,
// each kind at most once, and TransitionToArchive must come after
// TransitionToIA. Policies are stored and echoed; no data is tiered.
func (r *Region) PutLifecycleConfiguration(_ context.Context, ref string, policies []LifecyclePolicy) ([]LifecyclePolicy, error) {
	if err := r.checkSpace(); err != nil {
		return nil, err
	}
	if len(policies) > MaxLifecyclePolicies {
		return nil, badRequest("At most %d lifecycle policies can be given; %d were.", MaxLifecyclePolicies, len(policies))
	}
	var ia, archive string
	var primary bool
	for _, p := range policies {
		set := 0
		for _, v := range []string{p.TransitionToIA, p.TransitionToPrimaryStorageClass, p.TransitionToArchive} {
			if v != "" {
				set++
			}
		}
		if set != 1 {
			return nil, badRequest("Each lifecycle policy must set exactly one of TransitionToIA, TransitionToPrimaryStorageClass and TransitionToArchive.")
		}
		switch {
		case p.TransitionToIA != "":
			if err := oneOf("TransitionToIA", p.TransitionToIA, transitionRules); err != nil {
				return nil, err
			}
			if ia != "" {
				return nil, badRequest("TransitionToIA is given more than once.")
			}
			ia = p.TransitionToIA
		case p.TransitionToArchive != "":
			if err := oneOf("TransitionToArchive", p.TransitionToArchive, transitionRules); err != nil {
				return nil, err
			}
			if archive != "" {
				return nil, badRequest("TransitionToArchive is given more than once.")
			}
			archive = p.TransitionToArchive
		default:
			if err := oneOf("TransitionToPrimaryStorageClass", p.TransitionToPrimaryStorageClass, primaryRules); err != nil {
				return nil, err
			}
			if primary {
				return nil, badRequest("TransitionToPrimaryStorageClass is given more than once.")
			}
			primary = true
		}
	}
	if ia != "" && archive != "" && transitionDays(archive) <= transitionDays(ia) {
		return nil, badRequest("TransitionToArchive (%s) must be later than TransitionToIA (%s).", archive, ia)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.openAvailableFSLocked(ref)
	if err != nil {
		return nil, err
	}
	if archive != "" && (f.Throughput != ThroughputElastic || f.Performance != PerformanceGeneralPurpose) {
		return nil, badRequest("TransitionToArchive requires the elastic throughput mode and the generalPurpose performance mode.")
	}
	n := *f
	n.Lifecycle = slices.Clone(policies)
	t := r.begin()
	t.putFS(&n)
	if err := t.commit(); err != nil {
		return nil, err
	}
	return slices.Clone(policies), nil
}

// DescribeLifecycleConfiguration returns a file system's lifecycle
// policies (empty when none).
func (r *Region) DescribeLifecycleConfiguration(_ context.Context, ref string) ([]LifecyclePolicy, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.lookupFSLocked(ref)
	if err != nil {
		return nil, err
	}
	return slices.Clone(f.Lifecycle), nil
}

// PutBackupPolicy turns automatic backups on (ENABLED) or off (DISABLED);
// the policy goes through ENABLING or DISABLING for the transition delay.
// It returns the status now. The policy is stored and echoed.
func (r *Region) PutBackupPolicy(_ context.Context, ref, status string) (string, error) {
	if err := r.checkSpace(); err != nil {
		return "", err
	}
	switch status {
	case BackupEnabled, BackupDisabled:
	case BackupEnabling, BackupDisabling:
		return "", badRequest("Backup policy status %s cannot be set; give ENABLED or DISABLED.", status)
	default:
		return "", oneOf("Status", status, []string{BackupEnabled, BackupDisabled})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.openAvailableFSLocked(ref)
	if err != nil {
		return "", err
	}
	next := status
	switch {
	case status == BackupEnabled && f.Backup != BackupEnabled:
		next = BackupEnabling
	case status == BackupDisabled && f.Backup != BackupDisabled && f.Backup != "":
		next = BackupDisabling
	}
	if next == f.Backup {
		return next, nil
	}
	n := *f
	n.Backup, n.BackupSince = next, r.now()
	t := r.begin()
	t.putFS(&n)
	if err := t.commit(); err != nil {
		return "", err
	}
	r.poke()
	return next, nil
}

// DescribeBackupPolicy returns a file system's backup policy status;
// ErrPolicyNotFound when backups were never enabled nor a policy put.
func (r *Region) DescribeBackupPolicy(_ context.Context, ref string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.lookupFSLocked(ref)
	if err != nil {
		return "", err
	}
	if f.Backup == "" {
		return "", errorf(ErrPolicyNotFound, "File system '%s' has no backup policy.", f.ID)
	}
	return f.Backup, nil
}

// FileSystemPolicy is a file system's resource policy.
type FileSystemPolicy struct {
	FileSystemID, Policy string
}

// PutFileSystemPolicy stores a file system's resource policy: a JSON IAM
// policy document, validated for shape (Version, Statement with Effect
// Allow or Deny) and echoed as given. Of its conditions only
// aws:SecureTransport is enforced (PolicyRequiresTLS): the mount targets
// refuse plain-text NFS at once.
func (r *Region) PutFileSystemPolicy(ctx context.Context, ref, policy string, _ bool) (FileSystemPolicy, error) {
	if err := r.checkSpace(); err != nil {
		return FileSystemPolicy{}, err
	}
	if err := checkPolicy(policy); err != nil {
		return FileSystemPolicy{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.openAvailableFSLocked(ref)
	if err != nil {
		return FileSystemPolicy{}, err
	}
	n := *f
	n.Policy = policy
	t := r.begin()
	t.putFS(&n)
	if err := t.commit(); err != nil {
		return FileSystemPolicy{}, err
	}
	r.updateMountTargetsLocked(ctx, f.ID)
	return FileSystemPolicy{FileSystemID: f.ID, Policy: policy}, nil
}

// DescribeFileSystemPolicy returns a file system's policy
// (ErrPolicyNotFound when none is set).
func (r *Region) DescribeFileSystemPolicy(_ context.Context, ref string) (FileSystemPolicy, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.lookupFSLocked(ref)
	if err != nil {
		return FileSystemPolicy{}, err
	}
	if f.Policy == "" {
		return FileSystemPolicy{}, errorf(ErrPolicyNotFound, "File system '%s' has no file system policy.", f.ID)
	}
	return FileSystemPolicy{FileSystemID: f.ID, Policy: f.Policy}, nil
}

// DeleteFileSystemPolicy removes a file system's policy (none is fine).
func (r *Region) DeleteFileSystemPolicy(ctx context.Context, ref string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.openAvailableFSLocked(ref)
	if err != nil {
		return err
	}
	if f.Policy == "" {
		return nil
	}
	n := *f
	n.Policy = ""
	t := r.begin()
	t.putFS(&n)
	if err := t.commit(); err != nil {
		return err
	}
	r.updateMountTargetsLocked(ctx, f.ID)
	return nil
}

// PolicyRequiresTLS reports whether a file system policy refuses clients
// that do not use TLS: a Deny statement for every principal whose actions
// cover mounting (ClientMount, or a wildcard) under the condition
// {"Bool": {"aws:SecureTransport": "false"}} — the policy EFS's console
// calls "Enforce in-transit encryption for all clients". A malformed
// policy (never stored) requires nothing.
func PolicyRequiresTLS(policy string) bool {
	if policy == "" {
		return false
	}
	var doc struct {
		Statement json.RawMessage
	}
	if json.Unmarshal([]byte(policy), &doc) != nil {
		return false
	}
	type statement struct {
		Effect    string
		Action    json.RawMessage
		Condition map[string]map[string]json.RawMessage
	}
	var sts []statement
	if json.Unmarshal(doc.Statement, &sts) != nil {
		var one statement
		if json.Unmarshal(doc.Statement, &one) != nil {
			return false
		}
		sts = []statement{one}
	}
	for _, st := range sts {
		if st.Effect != "Deny" || !coversMount(st.Action) {
			continue
		}
		for op, kv := range st.Condition {
			if op != "Bool" && op != "BoolIfExists" {
				continue
			}
			for k, v := range kv {
				if strings.EqualFold(k, "aws:SecureTransport") && slices.Contains(stringsOf(v), "false") {
					return true
				}
			}
		}
	}
	return false
}

// coversMount reports whether a policy Action (a string or a list) names
// mounting: "*", "elasticfilesystem:*", "elasticfilesystem:Client*" or
// "elasticfilesystem:ClientMount" (case-insensitively, like IAM).
func coversMount(action json.RawMessage) bool {
	for _, a := range stringsOf(action) {
		switch strings.ToLower(a) {
		case "*", "elasticfilesystem:*", "elasticfilesystem:client*", "elasticfilesystem:clientmount",
			"elasticfilesystem:clientwrite", "elasticfilesystem:clientrootaccess":
			return true
		}
	}
	return false
}

// stringsOf reads a JSON string, boolean or list of them as lower-case
// strings.
func stringsOf(v json.RawMessage) []string {
	var one any
	if json.Unmarshal(v, &one) != nil {
		return nil
	}
	list, ok := one.([]any)
	if !ok {
		list = []any{one}
	}
	var out []string
	for _, x := range list {
		switch x := x.(type) {
		case string:
			out = append(out, strings.ToLower(x))
		case bool:
			out = append(out, strconv.FormatBool(x))
		}
	}
	return out
}

// checkPolicy validates the shape of an IAM policy document.
func checkPolicy(policy string) error {
	if n := utf8.RuneCountInString(policy); n < 1 || n > MaxPolicyLength {
		return badRequest("Policy must be 1 to %d characters long.", MaxPolicyLength)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(policy)))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		// The decoder's message names Go types: say what is wrong in JSON's terms.
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return errorf(ErrInvalidPolicy, "Policy is not valid JSON (at character %d).", syn.Offset)
		}
		return errorf(ErrInvalidPolicy, "Policy is not a JSON object.")
	}
	if dec.More() {
		return errorf(ErrInvalidPolicy, "Policy has content after its JSON object.")
	}
	if v, ok := doc["Version"]; ok {
		if s, _ := v.(string); s != "2012-10-17" && s != "2008-10-17" {
			return errorf(ErrInvalidPolicy, "Policy Version must be \"2012-10-17\" or \"2008-10-17\".")
		}
	}
	var statements []any
	switch s := doc["Statement"].(type) {
	case []any:
		statements = s
	case map[string]any:
		statements = []any{s}
	}
	if len(statements) == 0 {
		return errorf(ErrInvalidPolicy, "Policy must have a Statement.")
	}
	for i, st := range statements {
		m, ok := st.(map[string]any)
		if !ok {
			return errorf(ErrInvalidPolicy, "Policy statement %d is not an object.", i+1)
		}
		if e, _ := m["Effect"].(string); e != "Allow" && e != "Deny" {
			return errorf(ErrInvalidPolicy, "Policy statement %d must have Effect \"Allow\" or \"Deny\".", i+1)
		}
		_, action := m["Action"]
		_, notAction := m["NotAction"]
		if action == notAction {
			return errorf(ErrInvalidPolicy, "Policy statement %d must have exactly one of Action and NotAction.", i+1)
		}
	}
	return nil
}

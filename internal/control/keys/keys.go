package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/pagetoken"
	"github.com/regionfs/regionfs/internal/refusal"
	"github.com/regionfs/regionfs/internal/uuid"
)

// Sentinel errors, mapped to KMS error codes by package awserr's table.
var (
	ErrNotFound        = errors.New("not found")
	ErrInvalidArn      = errors.New("invalid arn")
	ErrAlreadyExists   = errors.New("already exists")
	ErrInvalidState    = errors.New("invalid key state")
	ErrDisabled        = errors.New("disabled")
	ErrValidation      = errors.New("validation")
	ErrInvalidAlias    = errors.New("invalid alias name")
	ErrTag             = errors.New("tag error")
	ErrMalformedPolicy = errors.New("malformed policy")
	ErrLimitExceeded   = errors.New("limit exceeded")
	ErrUnsupported     = errors.New("unsupported operation")
	ErrAccessDenied    = errors.New("access denied")
	ErrClosed          = errors.New("keys: closed")
)

// Error is a rule the domain enforced: one of the sentinels above with
// KMS's public message.
type Error = refusal.Error

// Tag is a key tag.
type Tag struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// meta is what the domain keeps in kms.Key.Meta.
type meta struct {
	Description    string               `json:"description,omitempty"`
	Usage          string               `json:"usage,omitempty"`
	Spec           string               `json:"spec,omitempty"`
	Origin         string               `json:"origin,omitempty"`
	Policy         string               `json:"policy,omitempty"`
	Tags           []Tag                `json:"tags,omitempty"`
	Rotation       bool                 `json:"rotation,omitempty"`
	RotationDays   int                  `json:"rotationDays,omitempty"`
	NextRotation   time.Time            `json:"nextRotation"`
	DeletionDate   time.Time            `json:"deletionDate"`
	PendingDays    int                  `json:"pendingDays,omitempty"`
	Token          string               `json:"token,omitempty"`
	AliasCreated   map[string]time.Time `json:"aliasCreated,omitempty"`
	StateBeforeDel string               `json:"stateBeforeDeletion,omitempty"`
}

// Engine is what the domain needs of the storage engine.
type Engine interface {
	KeysChanged(ctx context.Context, keyID string) (engine.KeyState, error)
}

// Options configure Keys.
type Options struct {
	Region, AccountID string
	Keyring           *kms.Keyring
	Engine            Engine
	// Changed is called after a key change the engine applied (the control
	// plane serves mount targets of file systems unlocked again).
	Changed func(ctx context.Context, st engine.KeyState)
	Clock   func() time.Time
	Logger  *slog.Logger
	// MaxKeys bounds the customer managed keys (100000 by default).
	MaxKeys int
	// SweepInterval: how often due deletions and rotations run (1m).
	SweepInterval time.Duration
}

// Keys is the KMS domain of one region.
type Keys struct {
	o    Options
	log  *slog.Logger
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex // serializes changes
	closed bool
}

// Open starts the domain (and its sweep loop).
func Open(o Options) (*Keys, error) {
	if o.Keyring == nil || o.Region == "" || o.AccountID == "" {
		return nil, errors.New("keys: Keyring, Region and AccountID are required")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxKeys == 0 {
		o.MaxKeys = 100000
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = time.Minute
	}
	k := &Keys{o: o, log: o.Logger.With("region", o.Region), stop: make(chan struct{}), done: make(chan struct{})}
	go k.loop()
	return k, nil
}

// Close stops the sweep loop.
func (k *Keys) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	k.mu.Unlock()
	close(k.stop)
	<-k.done
	return nil
}

func (k *Keys) loop() {
	defer close(k.done)
	t := time.NewTicker(k.o.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
			k.Sweep(context.Background())
		}
	}
}

func (k *Keys) now() time.Time { return k.o.Clock().UTC() }

// KeyARN is the ARN of key id.
func (k *Keys) KeyARN(id string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", k.o.Region, k.o.AccountID, id)
}

// AliasARN is the ARN of an alias.
func (k *Keys) AliasARN(alias string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:%s", k.o.Region, k.o.AccountID, alias)
}

func metaOf(key kms.Key) meta {
	var m meta
	if len(key.Meta) > 0 {
		json.Unmarshal(key.Meta, &m) // written by this package
	}
	if m.Usage == "" {
		m.Usage = "ENCRYPT_DECRYPT"
	}
	if m.Spec == "" {
		m.Spec = "SYMMETRIC_DEFAULT"
	}
	if m.Origin == "" {
		m.Origin = "AWS_KMS"
	}
	if key.Static {
		if m.Description == "" {
			m.Description = "Default key that protects my Amazon EFS file systems when no other key is defined"
		}
		m.Rotation, m.RotationDays = true, 365
	}
	return m
}

func setMeta(key *kms.Key, m meta) {
	b, _ := json.Marshal(m) // plain data
	key.Meta = b
}

// Metadata describes a key (KeyMetadata).
type Metadata struct {
	KeyID, ARN, AccountID, Description string
	Created                            time.Time
	Enabled                            bool
	State                              string
	Usage, Spec, Origin, Manager       string
	DeletionDate                       time.Time
	PendingDays                        int
	Rotation                           bool
	RotationDays                       int
	NextRotation                       time.Time
	CurrentVersion                     uint32
	Aliases                            []string
	Tags                               []Tag
	Policy                             string
	RotationsOnDemand, RotationsAuto   int
	LastRotation                       time.Time
	Rotations                          []kms.Rotation
	Token                              string
	AliasCreated                       map[string]time.Time
}

func (k *Keys) describe(key kms.Key) Metadata {
	m := metaOf(key)
	state := key.State
	if state == "" {
		state = kms.StateEnabled
	}
	d := Metadata{
		KeyID: key.ID, ARN: k.KeyARN(key.ID), AccountID: k.o.AccountID, Description: m.Description, Created: key.Created,
		Enabled: state == kms.StateEnabled, State: state, Usage: m.Usage, Spec: m.Spec, Origin: m.Origin, Manager: "CUSTOMER",
		DeletionDate: m.DeletionDate, PendingDays: m.PendingDays, Rotation: m.Rotation, RotationDays: m.RotationDays,
		NextRotation: m.NextRotation, CurrentVersion: key.CurrentVersion(), Aliases: slices.Clone(key.Aliases),
		Tags: slices.Clone(m.Tags), Policy: m.Policy, Rotations: slices.Clone(key.Rotations), Token: m.Token, AliasCreated: m.AliasCreated,
	}
	if key.Static {
		d.Manager = "AWS"
	}
	if d.Policy == "" {
		d.Policy = k.defaultPolicy()
	}
	for _, r := range key.Rotations {
		if r.OnDemand {
			d.RotationsOnDemand++
		} else {
			d.RotationsAuto++
		}
		d.LastRotation = r.Created
	}
	return d
}

func (k *Keys) defaultPolicy() string {
	return `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` +
		k.o.AccountID + `:root"},"Action":"kms:*","Resource":"*"}]}`
}

var (
	keyIDRe   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$|^mrk-[0-9a-f]{32}$`)
	aliasRe   = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]+$`)
	keyArnRe  = regexp.MustCompile(`^arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):key/(.+)$`)
	aliasArnR = regexp.MustCompile(`^arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):(alias/.+)$`)
)

// resolve finds a key by id or key ARN, and with aliases by alias name or
// alias ARN.
func (k *Keys) resolve(ref string, aliases bool) (kms.Key, error) {
	if ref == "" {
		return kms.Key{}, refusal.Errorf(ErrValidation, "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	if len(ref) > 2048 {
		return kms.Key{}, refusal.Errorf(ErrValidation, "1 validation error detected: Value at 'keyId' failed to satisfy constraint: Member must have length less than or equal to 2048")
	}
	name := ref
	switch {
	case strings.HasPrefix(ref, "arn:"):
		if m := keyArnRe.FindStringSubmatch(ref); m != nil {
			if m[1] != k.o.Region || m[2] != k.o.AccountID {
				return kms.Key{}, refusal.Errorf(ErrNotFound, "Key '%s' does not exist", ref)
			}
			name = m[3]
		} else if m := aliasArnR.FindStringSubmatch(ref); m != nil && aliases {
			if m[1] != k.o.Region || m[2] != k.o.AccountID {
				return kms.Key{}, refusal.Errorf(ErrNotFound, "Alias '%s' is not found.", ref)
			}
			name = m[3]
		} else {
			return kms.Key{}, refusal.Errorf(ErrInvalidArn, "Invalid arn %s", clip(ref))
		}
	case strings.HasPrefix(ref, "alias/"):
		if !aliases {
			return kms.Key{}, refusal.Errorf(ErrNotFound, "Invalid keyId '%s'", clip(ref))
		}
	}
	key, err := k.o.Keyring.Resolve(name)
	if err != nil {
		if strings.HasPrefix(name, "alias/") {
			return kms.Key{}, refusal.Errorf(ErrNotFound, "Alias '%s' is not found.", k.AliasARN(clip(name)))
		}
		if !keyIDRe.MatchString(name) {
			return kms.Key{}, refusal.Errorf(ErrNotFound, "Invalid keyId '%s'", clip(ref))
		}
		return kms.Key{}, refusal.Errorf(ErrNotFound, "Key '%s' does not exist", k.KeyARN(name))
	}
	if !strings.HasPrefix(name, "alias/") && key.ID != name {
		// A key id that is also an alias cannot happen (aliases start with alias/).
		return kms.Key{}, refusal.Errorf(ErrNotFound, "Key '%s' does not exist", k.KeyARN(name))
	}
	return key, nil
}

func clip(s string) string {
	if len(s) > 256 {
		return s[:256] + "…"
	}
	return s
}

// Describe describes a key (id, ARN, alias name or alias ARN).
func (k *Keys) Describe(_ context.Context, ref string) (Metadata, error) {
	key, err := k.resolve(ref, true)
	if err != nil {
		return Metadata{}, err
	}
	return k.describe(key), nil
}

// Resolve returns the key id a reference names, with aliases.
func (k *Keys) Resolve(ref string) (string, error) {
	key, err := k.resolve(ref, true)
	return key.ID, err
}

// CreateInput are the parameters of CreateKey.
type CreateInput struct {
	Description, Usage, Spec, Origin, Policy string
	Tags                                     []Tag
	MultiRegion                              bool
	// Token makes creation idempotent (CloudFormation): a key created with
	// the same token is returned.
	Token string
}

// Create makes a symmetric customer managed key.
func (k *Keys) Create(ctx context.Context, in CreateInput) (Metadata, error) {
	if len(in.Description) > 8192 {
		return Metadata{}, refusal.Errorf(ErrValidation, "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192")
	}
	if in.Usage != "" && in.Usage != "ENCRYPT_DECRYPT" {
		return Metadata{}, refusal.Errorf(ErrUnsupported, "KeyUsage %s is not supported: only symmetric ENCRYPT_DECRYPT keys encrypt file systems.", clip(in.Usage))
	}
	if in.Spec != "" && in.Spec != "SYMMETRIC_DEFAULT" {
		return Metadata{}, refusal.Errorf(ErrUnsupported, "KeySpec %s is not supported: only SYMMETRIC_DEFAULT keys encrypt file systems.", clip(in.Spec))
	}
	if in.Origin != "" && in.Origin != "AWS_KMS" {
		return Metadata{}, refusal.Errorf(ErrUnsupported, "Origin %s is not supported; keys are generated by the keyring (AWS_KMS).", clip(in.Origin))
	}
	if in.MultiRegion {
		return Metadata{}, refusal.Errorf(ErrUnsupported, "Multi-Region keys are not supported: each region keeps its own keyring.")
	}
	if in.Policy != "" {
		if err := checkPolicy(in.Policy); err != nil {
			return Metadata{}, err
		}
	}
	if err := checkTags(in.Tags); err != nil {
		return Metadata{}, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return Metadata{}, ErrClosed
	}
	n := 0
	for _, key := range k.o.Keyring.Keys() {
		if key.Static {
			continue
		}
		n++
		if in.Token != "" && metaOf(key).Token == in.Token {
			return k.describe(key), nil
		}
	}
	if n >= k.o.MaxKeys {
		return Metadata{}, refusal.Errorf(ErrLimitExceeded, "Limit of %d customer managed keys exceeded", k.o.MaxKeys)
	}
	key, err := kms.Generate(uuid.New())
	if err != nil {
		return Metadata{}, err
	}
	key.Created = k.now()
	setMeta(&key, meta{Description: in.Description, Usage: "ENCRYPT_DECRYPT", Spec: "SYMMETRIC_DEFAULT", Origin: "AWS_KMS",
		Policy: in.Policy, Tags: in.Tags, Token: in.Token})
	if err := k.o.Keyring.Add(key); err != nil {
		return Metadata{}, fmt.Errorf("keys: create: %w", err)
	}
	k.log.Info("kms key created", "kms_key", key.ID)
	return k.describe(key), nil
}

func checkPolicy(p string) error {
	if len(p) > 32768 {
		return refusal.Errorf(ErrValidation, "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length less than or equal to 32768")
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(p), &doc); err != nil {
		return refusal.Errorf(ErrMalformedPolicy, "MalformedPolicyDocumentException: The policy is not valid JSON.")
	}
	if _, ok := doc["Statement"]; !ok {
		return refusal.Errorf(ErrMalformedPolicy, "MalformedPolicyDocumentException: The policy has no Statement.")
	}
	return nil
}

func checkTags(tags []Tag) error {
	if len(tags) > 50 {
		return refusal.Errorf(ErrTag, "Too many tags: a key has at most 50")
	}
	for _, t := range tags {
		if t.Key == "" || len(t.Key) > 128 || len(t.Value) > 256 {
			return refusal.Errorf(ErrTag, "Tag keys must be 1 to 128 characters and values at most 256")
		}
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return refusal.Errorf(ErrTag, "Tags beginning with aws: are reserved")
		}
	}
	return nil
}

// change applies fn to a customer managed key (by id or ARN) and, when
// state says so, lets the engine apply the key's new state.
func (k *Keys) change(ctx context.Context, ref string, apply bool, fn func(key *kms.Key, m *meta) error) (Metadata, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return Metadata{}, ErrClosed
	}
	key, err := k.resolve(ref, false)
	if err != nil {
		return Metadata{}, err
	}
	if key.Static {
		return Metadata{}, refusal.Errorf(ErrAccessDenied, "Key '%s' is an AWS managed key: its configuration cannot be changed.", k.KeyARN(key.ID))
	}
	var m meta
	updated, err := k.o.Keyring.Update(key.ID, func(c *kms.Key) error {
		m = metaOf(*c)
		if err := fn(c, &m); err != nil {
			return err
		}
		setMeta(c, m)
		return nil
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return Metadata{}, e
		}
		return Metadata{}, fmt.Errorf("keys: %w", err)
	}
	if apply {
		k.applyLocked(ctx, key.ID)
	}
	return k.describe(updated), nil
}

// applyLocked lets the engine apply a key's state; its failure is logged
// (the key's state is durable; the next start applies it again).
func (k *Keys) applyLocked(ctx context.Context, id string) {
	if k.o.Engine == nil {
		return
	}
	st, err := k.o.Engine.KeysChanged(ctx, id)
	if err != nil {
		k.log.Error("kms key change not applied to file systems", "kms_key", id, "err", err)
	}
	if k.o.Changed != nil {
		k.o.Changed(ctx, st)
	}
}

func (k *Keys) invalidState(key *kms.Key) error {
	return refusal.Errorf(ErrInvalidState, "%s is pending deletion.", k.KeyARN(key.ID))
}

// Enable enables a key.
func (k *Keys) Enable(ctx context.Context, ref string) error {
	_, err := k.change(ctx, ref, true, func(key *kms.Key, _ *meta) error {
		if key.State == kms.StatePendingDeletion {
			return k.invalidState(key)
		}
		key.State = ""
		return nil
	})
	return err
}

// Disable disables a key: it encrypts nothing new, and the file systems it
// encrypts stop working until it is enabled again.
func (k *Keys) Disable(ctx context.Context, ref string) error {
	_, err := k.change(ctx, ref, true, func(key *kms.Key, _ *meta) error {
		if key.State == kms.StatePendingDeletion {
			return k.invalidState(key)
		}
		key.State = kms.StateDisabled
		return nil
	})
	return err
}

// ScheduleDeletion schedules a key's deletion in days (7–30).
func (k *Keys) ScheduleDeletion(ctx context.Context, ref string, days int) (Metadata, error) {
	if days < 7 || days > 30 {
		return Metadata{}, refusal.Errorf(ErrValidation, "1 validation error detected: Value '%d' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value %s", days, map[bool]string{true: "greater than or equal to 7", false: "less than or equal to 30"}[days < 7])
	}
	return k.change(ctx, ref, true, func(key *kms.Key, m *meta) error {
		if key.State == kms.StatePendingDeletion {
			return k.invalidState(key)
		}
		m.StateBeforeDel = key.State
		key.State = kms.StatePendingDeletion
		m.PendingDays = days
		m.DeletionDate = k.now().Add(time.Duration(days) * 24 * time.Hour)
		return nil
	})
}

// CancelDeletion cancels a scheduled deletion; the key is then disabled,
// as on AWS.
func (k *Keys) CancelDeletion(ctx context.Context, ref string) (Metadata, error) {
	return k.change(ctx, ref, true, func(key *kms.Key, m *meta) error {
		if key.State != kms.StatePendingDeletion {
			return refusal.Errorf(ErrInvalidState, "%s is not pending deletion.", k.KeyARN(key.ID))
		}
		key.State = kms.StateDisabled
		m.PendingDays, m.DeletionDate = 0, time.Time{}
		return nil
	})
}

// SetRotation enables (with a period of days, 90–2560) or
// disables automatic rotation.
func (k *Keys) SetRotation(ctx context.Context, ref string, enable bool, days int) error {
	if enable {
		if days < 90 || days > 2560 {
			return refusal.Errorf(ErrValidation, "1 validation error detected: Value '%d' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value between 90 and 2560", days)
		}
	}
	_, err := k.change(ctx, ref, false, func(key *kms.Key, m *meta) error {
		if key.State == kms.StatePendingDeletion {
			return k.invalidState(key)
		}
		if key.State == kms.StateDisabled {
			return refusal.Errorf(ErrDisabled, "%s is disabled.", k.KeyARN(key.ID))
		}
		m.Rotation = enable
		if enable {
			m.RotationDays = days
			m.NextRotation = k.now().Add(time.Duration(days) * 24 * time.Hour)
		} else {
			m.RotationDays, m.NextRotation = 0, time.Time{}
		}
		return nil
	})
	return err
}

// RotateNow rotates a key at once (RotateKeyOnDemand): a new backing key
// wraps data keys from now on, and the data keys of its file systems are
// re-wrapped under it (their data is not rewritten).
func (k *Keys) RotateNow(ctx context.Context, ref string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.resolve(ref, false)
	if err != nil {
		return "", err
	}
	if key.Static {
		return "", refusal.Errorf(ErrUnsupported, "Key '%s' is an AWS managed key: it rotates on its own schedule.", k.KeyARN(key.ID))
	}
	switch key.State {
	case kms.StatePendingDeletion:
		return "", k.invalidState(&key)
	case kms.StateDisabled:
		return "", refusal.Errorf(ErrDisabled, "%s is disabled.", k.KeyARN(key.ID))
	}
	if n := len(key.Rotations); n > 0 && key.Rotations[n-1].OnDemand {
		od := 0
		for _, r := range key.Rotations {
			if r.OnDemand {
				od++
			}
		}
		if od >= 25 {
			return "", refusal.Errorf(ErrLimitExceeded, "The on-demand rotation limit (25) for %s has been reached", k.KeyARN(key.ID))
		}
	}
	if _, err := k.o.Keyring.Rotate(key.ID, true, k.now()); err != nil {
		return "", fmt.Errorf("keys: rotate: %w", err)
	}
	k.applyLocked(ctx, key.ID)
	k.log.Info("kms key rotated", "kms_key", key.ID)
	return key.ID, nil
}

// Sweep destroys keys past their deletion date and rotates keys whose
// automatic rotation is due.
func (k *Keys) Sweep(ctx context.Context) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	now := k.now()
	for _, key := range k.o.Keyring.Keys() {
		if key.Static {
			continue
		}
		m := metaOf(key)
		switch {
		case key.State == kms.StatePendingDeletion && !m.DeletionDate.IsZero() && !now.Before(m.DeletionDate):
			if err := k.o.Keyring.Remove(key.ID); err != nil {
				k.log.Error("kms key deletion", "kms_key", key.ID, "err", err)
				continue
			}
			k.log.Warn("kms key deleted: its material is destroyed", "kms_key", key.ID)
			k.applyLocked(ctx, key.ID)
		case m.Rotation && (key.State == "" || key.State == kms.StateEnabled) && !m.NextRotation.IsZero() && !now.Before(m.NextRotation):
			if _, err := k.o.Keyring.Rotate(key.ID, false, now); err != nil {
				k.log.Error("kms key rotation", "kms_key", key.ID, "err", err)
				continue
			}
			if _, err := k.o.Keyring.Update(key.ID, func(c *kms.Key) error {
				cm := metaOf(*c)
				cm.NextRotation = now.Add(time.Duration(cm.RotationDays) * 24 * time.Hour)
				setMeta(c, cm)
				return nil
			}); err != nil {
				k.log.Error("kms key rotation schedule", "kms_key", key.ID, "err", err)
			}
			k.log.Info("kms key rotated (automatic)", "kms_key", key.ID)
			k.applyLocked(ctx, key.ID)
		}
	}
}

// List returns the keys (AWS managed ones too), by id.
func (k *Keys) List() []Metadata {
	var out []Metadata
	for _, key := range k.o.Keyring.Keys() {
		out = append(out, k.describe(key))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].KeyID < out[j].KeyID })
	return out
}

// markerKind is the kind of KMS list markers (package pagetoken).
const markerKind byte = 'K'

// Page applies a marker and a limit (1–1000, default 100) to n items.
func Page(n int, marker string, limit int) (lo, hi int, next string, err error) {
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 1000 {
		return 0, 0, "", refusal.Errorf(ErrValidation, "1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and 1000", limit)
	}
	if marker != "" {
		v, ok := pagetoken.DecodeIndex(markerKind, marker, n)
		if !ok {
			return 0, 0, "", refusal.Errorf(ErrValidation, "Invalid marker %s", clip(marker))
		}
		lo = v
	}
	hi = min(n, lo+limit)
	if hi < n {
		next = pagetoken.EncodeIndex(markerKind, hi)
	}
	return lo, hi, next, nil
}

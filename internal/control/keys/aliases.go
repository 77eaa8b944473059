package keys

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/refusal"
)

// Alias is an alias and its target.
type Alias struct {
	Name, ARN, TargetKeyID string
	Created                time.Time
}

func checkAliasName(name string) error {
	if len(name) < 1 || len(name) > 256 || !aliasRe.MatchString(name) {
		return refusal.Errorf(ErrValidation, "1 validation error detected: Value '%s' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$", clip(name))
	}
	if strings.HasPrefix(name, "alias/aws/") {
		return refusal.Errorf(ErrInvalidAlias, "Alias must not begin with 'alias/aws/'")
	}
	return nil
}

// CreateAlias points a new alias at a customer managed key.
func (k *Keys) CreateAlias(_ context.Context, name, target string) error {
	if err := checkAliasName(name); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := k.o.Keyring.Resolve(name); err == nil {
		return refusal.Errorf(ErrAlreadyExists, "An alias with the name %s already exists", k.AliasARN(name))
	}
	return k.pointAliasLocked(name, target)
}

// pointAliasLocked points alias name at target, a customer managed key
// that is not pending deletion.
func (k *Keys) pointAliasLocked(name, target string) error {
	key, err := k.resolve(target, false)
	if err != nil {
		return err
	}
	if key.Static {
		return refusal.Errorf(ErrAccessDenied, "Key '%s' is an AWS managed key: aliases cannot point at it.", k.KeyARN(key.ID))
	}
	if key.State == kms.StatePendingDeletion {
		return k.invalidState(&key)
	}
	return k.setAliasLocked(name, key.ID)
}

func (k *Keys) setAliasLocked(name, id string) error {
	if err := k.o.Keyring.SetAlias(name, id); err != nil {
		if errors.Is(err, kms.ErrStatic) {
			return refusal.Errorf(ErrAccessDenied, "Alias %s belongs to an AWS managed key.", k.AliasARN(name))
		}
		return fmt.Errorf("keys: alias: %w", err)
	}
	if id == "" {
		return nil
	}
	_, err := k.o.Keyring.Update(id, func(c *kms.Key) error {
		m := metaOf(*c)
		if m.AliasCreated == nil {
			m.AliasCreated = map[string]time.Time{}
		}
		m.AliasCreated[name] = k.now()
		setMeta(c, m)
		return nil
	})
	return err
}

// UpdateAlias points an existing alias at another customer managed key.
func (k *Keys) UpdateAlias(_ context.Context, name, target string) error {
	if err := checkAliasName(name); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	cur, err := k.o.Keyring.Resolve(name)
	if err != nil {
		return refusal.Errorf(ErrNotFound, "Alias %s is not found.", k.AliasARN(name))
	}
	if cur.Static {
		return refusal.Errorf(ErrAccessDenied, "Alias %s belongs to an AWS managed key.", k.AliasARN(name))
	}
	return k.pointAliasLocked(name, target)
}

// DeleteAlias deletes an alias (not its key).
func (k *Keys) DeleteAlias(_ context.Context, name string) error {
	if err := checkAliasName(name); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := k.o.Keyring.Resolve(name); err != nil {
		return refusal.Errorf(ErrNotFound, "Alias %s is not found.", k.AliasARN(name))
	}
	return k.setAliasLocked(name, "")
}

// ListAliases lists aliases (of one key when keyRef is given), by name.
func (k *Keys) ListAliases(_ context.Context, keyRef string) ([]Alias, error) {
	var only string
	if keyRef != "" {
		key, err := k.resolve(keyRef, false)
		if err != nil {
			return nil, err
		}
		only = key.ID
	}
	var out []Alias
	for _, key := range k.o.Keyring.Keys() {
		if only != "" && key.ID != only {
			continue
		}
		m := metaOf(key)
		for _, a := range key.Aliases {
			created := m.AliasCreated[a]
			if created.IsZero() {
				created = key.Created
			}
			out = append(out, Alias{Name: a, ARN: k.AliasARN(a), TargetKeyID: key.ID, Created: created})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Tag adds or replaces tags of a customer managed key.
func (k *Keys) Tag(ctx context.Context, ref string, tags []Tag) error {
	if err := checkTags(tags); err != nil {
		return err
	}
	_, err := k.change(ctx, ref, false, func(key *kms.Key, m *meta) error {
		if key.State == kms.StatePendingDeletion {
			return k.invalidState(key)
		}
		for _, t := range tags {
			replaced := false
			for i := range m.Tags {
				if m.Tags[i].Key == t.Key {
					m.Tags[i].Value, replaced = t.Value, true
				}
			}
			if !replaced {
				m.Tags = append(m.Tags, t)
			}
		}
		if len(m.Tags) > 50 {
			return refusal.Errorf(ErrTag, "Too many tags: a key has at most 50")
		}
		return nil
	})
	return err
}

// Untag removes tags.
func (k *Keys) Untag(ctx context.Context, ref string, keys []string) error {
	_, err := k.change(ctx, ref, false, func(key *kms.Key, m *meta) error {
		if key.State == kms.StatePendingDeletion {
			return k.invalidState(key)
		}
		var kept []Tag
		for _, t := range m.Tags {
			drop := false
			for _, r := range keys {
				drop = drop || r == t.Key
			}
			if !drop {
				kept = append(kept, t)
			}
		}
		m.Tags = kept
		return nil
	})
	return err
}

// PutPolicy stores a key policy (only the policy named "default" exists).
func (k *Keys) PutPolicy(ctx context.Context, ref, name, policy string) error {
	if name != "" && name != "default" {
		return refusal.Errorf(ErrValidation, "1 validation error detected: Value '%s' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: default", clip(name))
	}
	if err := checkPolicy(policy); err != nil {
		return err
	}
	_, err := k.change(ctx, ref, false, func(key *kms.Key, m *meta) error {
		if key.State == kms.StatePendingDeletion {
			return k.invalidState(key)
		}
		m.Policy = policy
		return nil
	})
	return err
}

// UpdateDescription sets a key's description.
func (k *Keys) UpdateDescription(ctx context.Context, ref, desc string) error {
	if len(desc) > 8192 {
		return refusal.Errorf(ErrValidation, "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192")
	}
	_, err := k.change(ctx, ref, false, func(key *kms.Key, m *meta) error {
		if key.State == kms.StatePendingDeletion {
			return k.invalidState(key)
		}
		m.Description = desc
		return nil
	})
	return err
}

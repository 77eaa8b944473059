package kms

import (
	"context"

	"github.com/regionfs/regionfs/internal/control/keys"
)

type keyMetadata struct {
	AWSAccountID                string   `json:"AWSAccountId"`
	KeyID                       string   `json:"KeyId"`
	Arn                         string   `json:"Arn"`
	CreationDate                *float64 `json:"CreationDate,omitempty"`
	Enabled                     bool     `json:"Enabled"`
	Description                 string   `json:"Description"`
	KeyUsage                    string   `json:"KeyUsage"`
	KeyState                    string   `json:"KeyState"`
	DeletionDate                *float64 `json:"DeletionDate,omitempty"`
	Origin                      string   `json:"Origin"`
	KeyManager                  string   `json:"KeyManager"`
	CustomerMasterKeySpec       string   `json:"CustomerMasterKeySpec"`
	KeySpec                     string   `json:"KeySpec"`
	EncryptionAlgorithms        []string `json:"EncryptionAlgorithms"`
	MultiRegion                 bool     `json:"MultiRegion"`
	PendingDeletionWindowInDays int      `json:"PendingDeletionWindowInDays,omitempty"`
}

func metadata(m keys.Metadata) keyMetadata {
	return keyMetadata{
		AWSAccountID: m.AccountID, KeyID: m.KeyID, Arn: m.ARN, CreationDate: epoch(m.Created), Enabled: m.Enabled,
		Description: m.Description, KeyUsage: m.Usage, KeyState: m.State, DeletionDate: epoch(m.DeletionDate),
		Origin: m.Origin, KeyManager: m.Manager, CustomerMasterKeySpec: m.Spec, KeySpec: m.Spec,
		EncryptionAlgorithms: []string{"SYMMETRIC_DEFAULT"}, PendingDeletionWindowInDays: m.PendingDays,
	}
}

type tagJSON struct {
	TagKey   string `json:"TagKey"`
	TagValue string `json:"TagValue"`
}

func toTags(ts []tagJSON) []keys.Tag {
	out := make([]keys.Tag, len(ts))
	for i, t := range ts {
		out[i] = keys.Tag{Key: t.TagKey, Value: t.TagValue}
	}
	return out
}

func (h *Handler) createKey(ctx context.Context, body []byte) (any, error) {
	var in struct {
		Policy, Description, KeyUsage, CustomerMasterKeySpec, KeySpec, Origin, CustomKeyStoreID, XksKeyID string
		BypassPolicyLockoutSafetyCheck, MultiRegion                                                       bool
		Tags                                                                                              []tagJSON
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.CustomKeyStoreID != "" || in.XksKeyID != "" {
		return nil, refuse(keys.ErrUnsupported, "Custom key stores are not supported.")
	}
	spec := in.KeySpec
	if spec == "" {
		spec = in.CustomerMasterKeySpec
	}
	m, err := h.k.Create(ctx, keys.CreateInput{Description: in.Description, Usage: in.KeyUsage, Spec: spec, Origin: in.Origin,
		Policy: in.Policy, Tags: toTags(in.Tags), MultiRegion: in.MultiRegion})
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyMetadata": metadata(m)}, nil
}

type keyRef struct {
	KeyID       string   `json:"KeyId"`
	GrantTokens []string `json:"GrantTokens"`
}

func (h *Handler) describeKey(ctx context.Context, body []byte) (any, error) {
	var in keyRef
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	m, err := h.k.Describe(ctx, in.KeyID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyMetadata": metadata(m)}, nil
}

type listInput struct {
	Limit  int    `json:"Limit"`
	Marker string `json:"Marker"`
}

type listOutput struct {
	NextMarker string `json:"NextMarker,omitempty"`
	Truncated  bool   `json:"Truncated"`
}

func (h *Handler) listKeys(_ context.Context, body []byte) (any, error) {
	var in listInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	all := h.k.List()
	lo, hi, next, err := keys.Page(len(all), in.Marker, in.Limit)
	if err != nil {
		return nil, err
	}
	type entry struct {
		KeyID  string `json:"KeyId"`
		KeyArn string `json:"KeyArn"`
	}
	out := struct {
		Keys []entry `json:"Keys"`
		listOutput
	}{Keys: []entry{}, listOutput: listOutput{next, next != ""}}
	for _, m := range all[lo:hi] {
		out.Keys = append(out.Keys, entry{m.KeyID, m.ARN})
	}
	return out, nil
}

func (h *Handler) enableKey(ctx context.Context, body []byte) (any, error) {
	var in keyRef
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	return nil, h.k.Enable(ctx, in.KeyID)
}

func (h *Handler) disableKey(ctx context.Context, body []byte) (any, error) {
	var in keyRef
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	return nil, h.k.Disable(ctx, in.KeyID)
}

func (h *Handler) scheduleKeyDeletion(ctx context.Context, body []byte) (any, error) {
	var in struct {
		KeyID               string `json:"KeyId"`
		PendingWindowInDays *int   `json:"PendingWindowInDays"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	days := 30
	if in.PendingWindowInDays != nil {
		days = *in.PendingWindowInDays
	}
	m, err := h.k.ScheduleDeletion(ctx, in.KeyID, days)
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyId": m.ARN, "DeletionDate": epoch(m.DeletionDate), "KeyState": m.State, "PendingWindowInDays": m.PendingDays}, nil
}

func (h *Handler) cancelKeyDeletion(ctx context.Context, body []byte) (any, error) {
	var in keyRef
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	m, err := h.k.CancelDeletion(ctx, in.KeyID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyId": m.ARN}, nil
}

func (h *Handler) updateKeyDescription(ctx context.Context, body []byte) (any, error) {
	var in struct {
		KeyID       string `json:"KeyId"`
		Description string `json:"Description"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	return nil, h.k.UpdateDescription(ctx, in.KeyID, in.Description)
}

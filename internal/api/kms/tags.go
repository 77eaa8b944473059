package kms

import (
	"context"

	"github.com/regionfs/regionfs/internal/control/keys"
)

func (h *Handler) tagResource(ctx context.Context, body []byte) (any, error) {
	var in struct {
		KeyID string    `json:"KeyId"`
		Tags  []tagJSON `json:"Tags"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	return nil, h.k.Tag(ctx, in.KeyID, toTags(in.Tags))
}

func (h *Handler) untagResource(ctx context.Context, body []byte) (any, error) {
	var in struct {
		KeyID   string   `json:"KeyId"`
		TagKeys []string `json:"TagKeys"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	return nil, h.k.Untag(ctx, in.KeyID, in.TagKeys)
}

func (h *Handler) listResourceTags(ctx context.Context, body []byte) (any, error) {
	m, in, err := h.describeForList(ctx, body)
	if err != nil {
		return nil, err
	}
	lo, hi, next, err := keys.Page(len(m.Tags), in.Marker, in.Limit)
	if err != nil {
		return nil, err
	}
	out := struct {
		Tags []tagJSON `json:"Tags"`
		listOutput
	}{Tags: []tagJSON{}, listOutput: listOutput{next, next != ""}}
	for _, t := range m.Tags[lo:hi] {
		out.Tags = append(out.Tags, tagJSON{t.Key, t.Value})
	}
	return out, nil
}

func (h *Handler) getKeyPolicy(ctx context.Context, body []byte) (any, error) {
	var in struct {
		KeyID      string `json:"KeyId"`
		PolicyName string `json:"PolicyName"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.PolicyName != "" && in.PolicyName != "default" {
		return nil, notFound("No such policy exists")
	}
	m, err := h.describeByID(ctx, in.KeyID)
	if err != nil {
		return nil, err
	}
	return map[string]string{"Policy": m.Policy, "PolicyName": "default"}, nil
}

func (h *Handler) putKeyPolicy(ctx context.Context, body []byte) (any, error) {
	var in struct {
		KeyID                          string `json:"KeyId"`
		PolicyName                     string `json:"PolicyName"`
		Policy                         string `json:"Policy"`
		BypassPolicyLockoutSafetyCheck bool   `json:"BypassPolicyLockoutSafetyCheck"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	return nil, h.k.PutPolicy(ctx, in.KeyID, in.PolicyName, in.Policy)
}

func (h *Handler) listKeyPolicies(ctx context.Context, body []byte) (any, error) {
	var in keyRef
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if _, err := h.describeByID(ctx, in.KeyID); err != nil {
		return nil, err
	}
	return map[string]any{"PolicyNames": []string{"default"}, "Truncated": false}, nil
}

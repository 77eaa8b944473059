package kms

import (
	"context"
	"slices"

	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/control/keys"
)

func (h *Handler) enableKeyRotation(ctx context.Context, body []byte) (any, error) {
	var in struct {
		KeyID                string `json:"KeyId"`
		RotationPeriodInDays *int   `json:"RotationPeriodInDays"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	days := 365
	if in.RotationPeriodInDays != nil {
		days = *in.RotationPeriodInDays
	}
	return nil, h.k.SetRotation(ctx, in.KeyID, true, days)
}

func (h *Handler) disableKeyRotation(ctx context.Context, body []byte) (any, error) {
	var in keyRef
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	return nil, h.k.SetRotation(ctx, in.KeyID, false, 0)
}

func (h *Handler) getKeyRotationStatus(ctx context.Context, body []byte) (any, error) {
	var in keyRef
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	m, err := h.describeByID(ctx, in.KeyID)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"KeyRotationEnabled": m.Rotation, "KeyId": m.ARN}
	if m.Rotation {
		out["RotationPeriodInDays"] = m.RotationDays
		if !m.NextRotation.IsZero() {
			out["NextRotationDate"] = epoch(m.NextRotation)
		}
	}
	return out, nil
}

// describeByID describes a key named by id or key ARN (not an alias), as
// the rotation, tag and policy operations take it.
func (h *Handler) describeByID(ctx context.Context, ref string) (keys.Metadata, error) {
	if len(ref) >= 6 && ref[:6] == "alias/" {
		return keys.Metadata{}, notFound("Invalid keyId '" + awsproto.Clip(ref) + "'")
	}
	return h.k.Describe(ctx, ref)
}

func (h *Handler) rotateKeyOnDemand(ctx context.Context, body []byte) (any, error) {
	var in keyRef
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	id, err := h.k.RotateNow(ctx, in.KeyID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"KeyId": id}, nil
}

// describeForList reads the KeyId and paging of a list request about one
// key and describes the key.
func (h *Handler) describeForList(ctx context.Context, body []byte) (keys.Metadata, listInput, error) {
	var in struct {
		KeyID string `json:"KeyId"`
		listInput
	}
	if err := decode(body, &in); err != nil {
		return keys.Metadata{}, listInput{}, err
	}
	m, err := h.describeByID(ctx, in.KeyID)
	return m, in.listInput, err
}

func (h *Handler) listKeyRotations(ctx context.Context, body []byte) (any, error) {
	m, in, err := h.describeForList(ctx, body)
	if err != nil {
		return nil, err
	}
	rs := slices.Clone(m.Rotations)
	lo, hi, next, err := keys.Page(len(rs), in.Marker, in.Limit)
	if err != nil {
		return nil, err
	}
	type entry struct {
		KeyID        string   `json:"KeyId"`
		RotationDate *float64 `json:"RotationDate"`
		RotationType string   `json:"RotationType"`
	}
	out := struct {
		Rotations []entry `json:"Rotations"`
		listOutput
	}{Rotations: []entry{}, listOutput: listOutput{next, next != ""}}
	for _, r := range rs[lo:hi] {
		t := "AUTOMATIC"
		if r.OnDemand {
			t = "ON_DEMAND"
		}
		out.Rotations = append(out.Rotations, entry{m.KeyID, epoch(r.Created), t})
	}
	return out, nil
}

package kms

import (
	"context"

	"github.com/regionfs/regionfs/internal/control/keys"
)

type aliasInput struct {
	AliasName   string `json:"AliasName"`
	TargetKeyID string `json:"TargetKeyId"`
}

func (h *Handler) createAlias(ctx context.Context, body []byte) (any, error) {
	var in aliasInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	return nil, h.k.CreateAlias(ctx, in.AliasName, in.TargetKeyID)
}

func (h *Handler) updateAlias(ctx context.Context, body []byte) (any, error) {
	var in aliasInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	return nil, h.k.UpdateAlias(ctx, in.AliasName, in.TargetKeyID)
}

func (h *Handler) deleteAlias(ctx context.Context, body []byte) (any, error) {
	var in aliasInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	return nil, h.k.DeleteAlias(ctx, in.AliasName)
}

func (h *Handler) listAliases(ctx context.Context, body []byte) (any, error) {
	var in struct {
		KeyID string `json:"KeyId"`
		listInput
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	all, err := h.k.ListAliases(ctx, in.KeyID)
	if err != nil {
		return nil, err
	}
	lo, hi, next, err := keys.Page(len(all), in.Marker, in.Limit)
	if err != nil {
		return nil, err
	}
	type entry struct {
		AliasName       string   `json:"AliasName"`
		AliasArn        string   `json:"AliasArn"`
		TargetKeyID     string   `json:"TargetKeyId"`
		CreationDate    *float64 `json:"CreationDate,omitempty"`
		LastUpdatedDate *float64 `json:"LastUpdatedDate,omitempty"`
	}
	out := struct {
		Aliases []entry `json:"Aliases"`
		listOutput
	}{Aliases: []entry{}, listOutput: listOutput{next, next != ""}}
	for _, a := range all[lo:hi] {
		out.Aliases = append(out.Aliases, entry{a.Name, a.ARN, a.TargetKeyID, epoch(a.Created), epoch(a.Created)})
	}
	return out, nil
}

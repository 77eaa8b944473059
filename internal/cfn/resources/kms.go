package resources

import (
	"context"
	"errors"

	"github.com/regionfs/regionfs/internal/cfn"
	"github.com/regionfs/regionfs/internal/control/keys"
)

// Keys is the region's KMS domain.
type Keys = *keys.Keys

// keyErr is the handler error of a KMS call.
func keyErr(err error) error { return handlerError(err) }

func keyTypes(o Options) []*cfn.ResourceType {
	if o.Keys == nil {
		return nil
	}
	pending := &cfn.Prop{Kind: cfn.Integer}
	lo, hi := 7.0, 30.0
	pending.Min, pending.Max = &lo, &hi
	period := &cfn.Prop{Kind: cfn.Integer}
	plo, phi := 90.0, 2560.0
	period.Min, period.Max = &plo, &phi
	desc := &cfn.Prop{Kind: cfn.String, MaxLen: 8192}
	return []*cfn.ResourceType{
		{
			Name:       "AWS::KMS::Key",
			Attributes: []string{"Arn", "KeyId"},
			Properties: map[string]*cfn.Prop{
				"BypassPolicyLockoutSafetyCheck": p(cfn.Boolean),
				"Description":                    desc,
				"EnableKeyRotation":              p(cfn.Boolean),
				"Enabled":                        p(cfn.Boolean),
				"KeyPolicy":                      p(cfn.JSON),
				"KeySpec":                        replace(enum("SYMMETRIC_DEFAULT", "RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512", "SM2")),
				"KeyUsage":                       replace(enum("ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT")),
				"MultiRegion":                    replace(p(cfn.Boolean)),
				"Origin":                         replace(enum("AWS_KMS", "EXTERNAL")),
				"PendingWindowInDays":            pending,
				"RotationPeriodInDays":           period,
				"Tags":                           tagList(),
			},
			Provider: &kmsKeys{o},
		},
		{
			Name:       "AWS::KMS::Alias",
			Attributes: nil,
			Properties: map[string]*cfn.Prop{
				"AliasName":   req(replace(pattern(`^(alias/)[a-zA-Z0-9:/_-]+$`, 1, 256))),
				"TargetKeyId": req(&cfn.Prop{Kind: cfn.String, MinLen: 1, MaxLen: 256}),
			},
			Provider: &kmsAliases{o},
		},
	}
}

type kmsKeys struct{ o Options }

func keyTags(pr map[string]any) []keys.Tag {
	var out []keys.Tag
	for _, t := range tagsOf(pr, "Tags") {
		out = append(out, keys.Tag{Key: t[0], Value: t[1]})
	}
	return out
}

func (k *kmsKeys) Create(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	pr := r.Props
	in := keys.CreateInput{Description: str(pr, "Description"), Usage: str(pr, "KeyUsage"), Spec: str(pr, "KeySpec"),
		Origin: str(pr, "Origin"), Tags: keyTags(pr), MultiRegion: boolean(pr, "MultiRegion"), Token: r.Token}
	if has(pr, "KeyPolicy") {
		in.Policy = jsonText(pr["KeyPolicy"])
	}
	m, err := k.o.Keys.Create(ctx, in)
	if err != nil {
		return cfn.Outcome{}, keyErr(err)
	}
	if r.Started != nil {
		r.Started(m.KeyID)
	}
	if err := k.apply(ctx, m.KeyID, nil, pr); err != nil {
		return cfn.Outcome{}, err
	}
	return cfn.Outcome{PhysicalID: m.KeyID, Attributes: map[string]string{"Arn": m.ARN, "KeyId": m.KeyID}}, nil
}

func (k *kmsKeys) apply(ctx context.Context, id string, old, pr map[string]any) error {
	enabled := !has(pr, "Enabled") || boolean(pr, "Enabled")
	wasEnabled := old == nil || !has(old, "Enabled") || boolean(old, "Enabled")
	if enabled != wasEnabled || (old == nil && !enabled) {
		var err error
		if enabled {
			err = k.o.Keys.Enable(ctx, id)
		} else {
			err = k.o.Keys.Disable(ctx, id)
		}
		if err != nil {
			return keyErr(err)
		}
	}
	rot, wasRot := boolean(pr, "EnableKeyRotation"), old != nil && boolean(old, "EnableKeyRotation")
	if rot != wasRot || (rot && str(pr, "RotationPeriodInDays") != str(old, "RotationPeriodInDays")) {
		days := 365
		if v, ok := number(pr, "RotationPeriodInDays"); ok {
			days = int(v)
		}
		if err := k.o.Keys.SetRotation(ctx, id, rot, days); err != nil {
			return keyErr(err)
		}
	}
	if old == nil {
		return nil
	}
	if str(old, "Description") != str(pr, "Description") {
		if err := k.o.Keys.UpdateDescription(ctx, id, str(pr, "Description")); err != nil {
			return keyErr(err)
		}
	}
	if !equalJSON(old["KeyPolicy"], pr["KeyPolicy"]) && has(pr, "KeyPolicy") {
		if err := k.o.Keys.PutPolicy(ctx, id, "default", jsonText(pr["KeyPolicy"])); err != nil {
			return keyErr(err)
		}
	}
	set, remove := tagDiff(tagsOf(old, "Tags"), tagsOf(pr, "Tags"))
	if len(set) > 0 {
		var ts []keys.Tag
		for _, t := range set {
			ts = append(ts, keys.Tag{Key: t[0], Value: t[1]})
		}
		if err := k.o.Keys.Tag(ctx, id, ts); err != nil {
			return keyErr(err)
		}
	}
	if len(remove) > 0 {
		if err := k.o.Keys.Untag(ctx, id, remove); err != nil {
			return keyErr(err)
		}
	}
	return nil
}

func (k *kmsKeys) Update(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	if err := k.apply(ctx, r.PhysicalID, r.OldProps, r.Props); err != nil {
		return cfn.Outcome{}, err
	}
	return cfn.Outcome{PhysicalID: r.PhysicalID, Attributes: r.Attributes}, nil
}

// Delete schedules the key's deletion, as CloudFormation does (after
// PendingWindowInDays, 30 by default).
func (k *kmsKeys) Delete(ctx context.Context, r *cfn.Request) error {
	days := 30
	if v, ok := number(r.Props, "PendingWindowInDays"); ok {
		days = int(v)
	}
	_, err := k.o.Keys.ScheduleDeletion(ctx, r.PhysicalID, days)
	if err == nil || errors.Is(err, keys.ErrNotFound) || errors.Is(err, keys.ErrInvalidState) {
		return nil // gone, or already pending deletion
	}
	return keyErr(err)
}

type kmsAliases struct{ o Options }

func (a *kmsAliases) Create(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	name, target := str(r.Props, "AliasName"), str(r.Props, "TargetKeyId")
	err := a.o.Keys.CreateAlias(ctx, name, target)
	if errors.Is(err, keys.ErrAlreadyExists) {
		// Made before a restart: ours if it points at the target.
		if cur, rerr := a.o.Keys.Resolve(name); rerr == nil {
			if want, terr := a.o.Keys.Resolve(target); terr == nil && want == cur {
				err = nil
			}
		}
	}
	if err != nil {
		return cfn.Outcome{}, keyErr(err)
	}
	return cfn.Outcome{PhysicalID: name}, nil
}

func (a *kmsAliases) Update(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	if err := a.o.Keys.UpdateAlias(ctx, r.PhysicalID, str(r.Props, "TargetKeyId")); err != nil {
		return cfn.Outcome{}, keyErr(err)
	}
	return cfn.Outcome{PhysicalID: r.PhysicalID}, nil
}

func (a *kmsAliases) Delete(ctx context.Context, r *cfn.Request) error {
	if err := a.o.Keys.DeleteAlias(ctx, r.PhysicalID); err != nil && !errors.Is(err, keys.ErrNotFound) {
		return keyErr(err)
	}
	return nil
}

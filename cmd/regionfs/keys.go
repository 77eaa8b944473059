package main

import (
	"context"

	kmsapi "github.com/regionfs/regionfs/internal/api/kms"
	"github.com/regionfs/regionfs/internal/control/keys"
	"github.com/regionfs/regionfs/internal/engine"
)

// openKeys opens the region's KMS domain over its keyring and engine, and
// applies the keys' current states (a key disabled while the region was
// down, a rotation not yet applied).
func openKeys(n *node) (*keys.Keys, error) {
	k, err := keys.Open(keys.Options{
		Region: n.cfg.Region, AccountID: n.cfg.AccountID, Keyring: n.keyring, Engine: n.engine, Logger: n.log,
		Changed: func(ctx context.Context, st engine.KeyState) {
			if len(st.Unlocked) > 0 {
				n.control.region.RefreshMountTargets(ctx)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	for _, key := range n.keyring.Keys() {
		if _, err := n.engine.KeysChanged(context.Background(), key.ID); err != nil {
			n.log.Error("kms key state not applied", "kms_key", key.ID, "err", err)
		}
	}
	n.apiOpts.KMS = kmsapi.NewHandler(k, n.log)
	return k, nil
}

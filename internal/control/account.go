package control

import "context"

// accountResources are the resources whose id length the preference sets.
var accountResources = []string{"FILE_SYSTEM", "MOUNT_TARGET"}

func (r *Region) prefsLocked() ResourceIDPreference {
	t := r.prefs.ResourceIDType
	if t == "" {
		t = LongID
	}
	return ResourceIDPreference{ResourceIDType: t, Resources: append([]string(nil), accountResources...)}
}

// DescribeAccountPreferences returns the account's resource id preference
// (LONG_ID unless set).
func (r *Region) DescribeAccountPreferences(context.Context) ResourceIDPreference {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.prefsLocked()
}

// PutAccountPreferences sets the length of new file system and mount
// target ids: LONG_ID (17 hex digits) or SHORT_ID (8).
func (r *Region) PutAccountPreferences(_ context.Context, idType string) (ResourceIDPreference, error) {
	if err := r.checkSpace(); err != nil {
		return ResourceIDPreference{}, err
	}
	if err := oneOf("ResourceIdType", idType, []string{LongID, ShortID}); err != nil {
		return ResourceIDPreference{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkLocked(); err != nil {
		return ResourceIDPreference{}, err
	}
	t := r.begin()
	t.putPrefs(prefsRecord{ResourceIDType: idType})
	if err := t.commit(); err != nil {
		return ResourceIDPreference{}, err
	}
	return r.prefsLocked(), nil
}

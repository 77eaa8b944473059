package efs

import "net/http"

type putAccountPreferencesOutput struct {
	ResourceIDPreference resourceIDPreferenceJSON `json:"ResourceIdPreference"`
}

// putAccountPreferences: PUT /2015-02-01/account-preferences → 200.
func putAccountPreferences(c *call) error {
	b, err := c.bodyReader()
	if err != nil {
		return err
	}
	t, ok := b.str("ResourceIdType")
	b.required("ResourceIdType", ok)
	if err := *b.err; err != nil {
		return err
	}
	p, err := c.h.r.PutAccountPreferences(c.req.Context(), t)
	if err != nil {
		return err
	}
	return c.reply(http.StatusOK, putAccountPreferencesOutput{ResourceIDPreference: preferenceOut(p)})
}

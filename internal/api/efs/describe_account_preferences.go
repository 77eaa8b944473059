package efs

import "net/http"

type accountPreferencesOutput struct {
	ResourceIDPreference resourceIDPreferenceJSON `json:"ResourceIdPreference"`
	NextToken            string                   `json:"NextToken,omitempty"`
}

// describeAccountPreferences: GET /2015-02-01/account-preferences, with a
// JSON body (NextToken, MaxResults) on the GET. There is one preference, so
// there is never a next page.
func describeAccountPreferences(c *call) error {
	b, err := c.bodyReader()
	if err != nil {
		return err
	}
	if tok, ok := b.str("NextToken"); ok {
		b.check("NextToken", tok, markerRule)
	}
	b.integer("MaxResults", 1, 1<<31-1)
	if err := *b.err; err != nil {
		return err
	}
	return c.reply(http.StatusOK, accountPreferencesOutput{ResourceIDPreference: preferenceOut(c.h.r.DescribeAccountPreferences(c.req.Context()))})
}

package efs

import "net/http"

// untagResource: DELETE /2015-02-01/resource-tags/{ResourceId}?tagKeys=…&tagKeys=… → 200.
func untagResource(c *call) error {
	id, err := c.label("ResourceId", resourceIDRule)
	if err != nil {
		return err
	}
	keys, err := c.tagKeys(c.query["tagKeys"])
	if err != nil {
		return err
	}
	if err := c.h.r.UntagResource(c.req.Context(), id, keys); err != nil {
		return err
	}
	return c.noContent(http.StatusOK)
}

// tagKeys validates a TagKeys list (1–50 keys of 1–128 characters).
func (c *call) tagKeys(keys []string) ([]string, error) {
	if len(keys) == 0 {
		return nil, errorf(ErrBadRequest, "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null.")
	}
	if len(keys) > maxTagKeys {
		return nil, errorf(ErrBadRequest, "1 validation error detected: Value at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to %d.", maxTagKeys)
	}
	for _, k := range keys {
		if err := tagKeyRule.check("tagKeys.member", k); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

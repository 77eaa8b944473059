package main

import (
	"context"
	"net/http"
)

// controlPlane is the region's EFS control plane as the commands use it:
// the EFS API handler and what the EC2 subset needs from it.
type controlPlane struct {
	efs           http.Handler // nil until the control plane exists: EFS operations answer UnknownOperationException
	usedAddresses func(subnetID string) int
	closeFn       func() error
}

// openControl opens the control plane of n.
func openControl(_ context.Context, _ *node) (*controlPlane, error) {
	return &controlPlane{}, nil
}

func (c *controlPlane) close() error {
	if c.closeFn == nil {
		return nil
	}
	return c.closeFn()
}

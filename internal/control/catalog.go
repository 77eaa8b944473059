package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/regionfs/regionfs/internal/replication"
)

// ReplicationCatalog is the region as replication.Manager sees it: file
// systems to replicate, destinations to create, protections and roles to
// set. Errors wrap replication's sentinels as well as control's, so either
// edge table maps them.
func (r *Region) ReplicationCatalog() replication.Catalog { return catalog{r} }

type catalog struct{ r *Region }

var _ replication.Catalog = catalog{}

func (c catalog) Lookup(ctx context.Context, ref string) (replication.FileSystem, error) {
	f, err := c.r.DescribeFileSystem(ctx, ref)
	if err != nil {
		return replication.FileSystem{}, replicationErr(err)
	}
	return replication.FileSystem{
		ID: f.ID, ARN: f.ARN, OwnerID: f.OwnerID, Engine: f.ID, LifeCycleState: string(f.LifeCycleState),
		Protection: f.Protection, AvailabilityZoneName: f.AvailabilityZoneName, Encrypted: f.Encrypted, KMSKeyID: f.KMSKeyARN,
	}, nil
}

func (c catalog) CreateReplica(ctx context.Context, req replication.ReplicaRequest) (replication.FileSystem, error) {
	f, err := c.r.CreateReplica(ctx, ReplicaInput{
		CreationToken: req.Token, AvailabilityZoneName: req.AvailabilityZoneName, KMSKeyID: req.KMSKeyID,
		Tags: []Tag{{Key: "Name", Value: "replica"}, {Key: "regionfs:replica-of", Value: sanitizeTagValue(req.SourceARN)}},
	})
	if err != nil {
		return replication.FileSystem{}, replicationErr(err)
	}
	return c.Lookup(ctx, f.ID)
}

func (c catalog) ResetToReplica(ctx context.Context, fsID, kmsKeyID string) error {
	return replicationErr(c.r.ResetToReplica(ctx, fsID, kmsKeyID))
}

func (c catalog) KeepCopy(ctx context.Context, fsID, reason string) (string, error) {
	id, err := c.r.KeepCopy(ctx, fsID, reason)
	return id, replicationErr(err)
}

func (c catalog) SetProtection(ctx context.Context, fsID, p string) error {
	return replicationErr(c.r.SetProtection(ctx, fsID, p))
}

func (c catalog) SetRole(ctx context.Context, fsID string, role replication.Role) error {
	var rr string
	switch role {
	case replication.RoleSource:
		rr = RoleSource
	case replication.RoleDestination:
		rr = RoleDestination
	}
	return replicationErr(c.r.SetReplicationRole(ctx, fsID, rr))
}

// replicationErr adds replication's sentinel to a control error.
func replicationErr(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range []struct{ c, r error }{
		{ErrFileSystemNotFound, replication.ErrFileSystemNotFound},
		{ErrIncorrectLifeCycleState, replication.ErrLifeCycle},
		{ErrReplicationAlreadyExists, replication.ErrAlreadyExists},
		{ErrUnsupportedAvailabilityZone, replication.ErrValidation},
		{ErrBadRequest, replication.ErrBadRequest},
	} {
		if errors.Is(err, m.c) {
			return fmt.Errorf("%w: %w", m.r, err)
		}
	}
	return err
}

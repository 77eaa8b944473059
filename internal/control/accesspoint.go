package control

import (
	"context"
	"slices"
)

// MaxSecondaryGIDs bounds PosixUser.SecondaryGIDs.
const MaxSecondaryGIDs = 16

// CreateAccessPointInput are the parameters of CreateAccessPoint.
type CreateAccessPointInput struct {
	ClientToken   string
	FileSystemID  string
	Tags          []Tag
	PosixUser     *PosixUser
	RootDirectory RootDirectory // Path "" means "/"
}

// CreateAccessPoint creates an access point of an available file system.
// Its mount targets export it at once as "/<access point id>". A client
// token already used is ErrAccessPointAlreadyExists with the existing
// access point's id.
func (r *Region) CreateAccessPoint(ctx context.Context, in CreateAccessPointInput) (AccessPoint, error) {
	if err := r.checkSpace(); err != nil {
		return AccessPoint{}, err
	}
	if in.ClientToken == "" {
		return AccessPoint{}, badRequest("ClientToken is required.")
	}
	if err := checkTags(in.Tags); err != nil {
		return AccessPoint{}, err
	}
	root := in.RootDirectory
	if root.Path == "" {
		root.Path = "/"
	}
	if err := checkAccessPointPath(root.Path); err != nil {
		return AccessPoint{}, err
	}
	if c := root.CreationInfo; c != nil {
		if !octalPerms.MatchString(c.Permissions) {
			return AccessPoint{}, badRequest("CreationInfo Permissions '%s' must be 3 or 4 octal digits.", clip(c.Permissions))
		}
		ci := *c
		root.CreationInfo = &ci
	}
	var user *PosixUser
	if u := in.PosixUser; u != nil {
		if len(u.SecondaryGIDs) > MaxSecondaryGIDs {
			return AccessPoint{}, badRequest("PosixUser can have at most %d secondary group ids.", MaxSecondaryGIDs)
		}
		user = &PosixUser{UID: u.UID, GID: u.GID, SecondaryGIDs: slices.Clone(u.SecondaryGIDs)}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkLocked(); err != nil {
		return AccessPoint{}, err
	}
	if id, ok := r.apTokens[in.ClientToken]; ok {
		e := errorf(ErrAccessPointAlreadyExists, "Access point '%s' already exists with client token '%s'.", id, clip(in.ClientToken))
		e.ResourceID = id
		return AccessPoint{}, e
	}
	f, err := r.lookupFSLocked(in.FileSystemID)
	if err != nil {
		return AccessPoint{}, err
	}
	if f.State != StateAvailable {
		return AccessPoint{}, wrongFSState(f.ID, f.State)
	}
	n := 0
	for _, a := range r.aps {
		if a.FileSystemID == f.ID {
			n++
		}
	}
	if n >= r.o.MaxAccessPoints {
		return AccessPoint{}, errorf(ErrAccessPointLimitExceeded, "File system '%s' has reached the limit of %d access points.", f.ID, r.o.MaxAccessPoints)
	}
	now := r.now()
	a := &apRecord{
		ID: r.newIDLocked(apPrefix), FileSystemID: f.ID, Token: in.ClientToken, Created: now,
		State: StateCreating, Since: now, Tags: mergeTags(nil, in.Tags), PosixUser: user, Root: root,
	}
	t := r.begin()
	t.putAP(a)
	if err := t.commit(); err != nil {
		return AccessPoint{}, err
	}
	r.log.Info("access point created", "access_point", a.ID, "fs_id", f.ID, "path", root.Path)
	r.updateMountTargetsLocked(ctx, f.ID)
	r.poke()
	return r.describeAP(a), nil
}

func (r *Region) describeAP(a *apRecord) AccessPoint {
	d := AccessPoint{
		ID: a.ID, ARN: r.AccessPointARN(a.ID), FileSystemID: a.FileSystemID, OwnerID: r.o.Region.AccountID,
		ClientToken: a.Token, Name: tagName(a.Tags), Tags: slices.Clone(a.Tags), LifeCycleState: a.State,
		RootDirectory: RootDirectory{Path: a.Root.Path},
	}
	if u := a.PosixUser; u != nil {
		d.PosixUser = &PosixUser{UID: u.UID, GID: u.GID, SecondaryGIDs: slices.Clone(u.SecondaryGIDs)}
	}
	if c := a.Root.CreationInfo; c != nil {
		ci := *c
		d.RootDirectory.CreationInfo = &ci
	}
	return d
}

// AccessPointQuery selects access points: one by id (or ARN), those of a
// file system, or all (not both).
type AccessPointQuery struct {
	AccessPointID, FileSystemID string
	Page
}

// DescribeAccessPoints lists access points, one page at a time (100 by
// default and at most).
func (r *Region) DescribeAccessPoints(_ context.Context, q AccessPointQuery) ([]AccessPoint, string, error) {
	if q.AccessPointID != "" && q.FileSystemID != "" {
		return nil, "", badRequest("AccessPointId and FileSystemId cannot both be given.")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []*apRecord
	switch {
	case q.AccessPointID != "":
		a, err := r.lookupAPLocked(q.AccessPointID)
		if err != nil {
			return nil, "", err
		}
		all = []*apRecord{a}
	case q.FileSystemID != "":
		f, err := r.lookupFSLocked(q.FileSystemID)
		if err != nil {
			return nil, "", err
		}
		for _, a := range sortedValues(r.aps) {
			if a.FileSystemID == f.ID {
				all = append(all, a)
			}
		}
	default:
		all = sortedValues(r.aps)
	}
	page, next, err := paginate(all, markerAccessPoints, q.Page, 100, 100)
	if err != nil {
		return nil, "", err
	}
	out := make([]AccessPoint, len(page))
	for i, a := range page {
		out[i] = r.describeAP(a)
	}
	return out, next, nil
}

// DeleteAccessPoint deletes an access point: its mount targets stop
// exporting it at once. Deleting one already being deleted succeeds.
func (r *Region) DeleteAccessPoint(ctx context.Context, ref string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkLocked(); err != nil {
		return err
	}
	a, err := r.lookupAPLocked(ref)
	if err != nil {
		return err
	}
	if a.State == StateDeleting {
		return nil
	}
	n := *a
	n.State, n.Since = StateDeleting, r.now()
	t := r.begin()
	t.putAP(&n)
	if err := t.commit(); err != nil {
		return err
	}
	r.log.Info("access point deleting", "access_point", a.ID, "fs_id", a.FileSystemID)
	r.updateMountTargetsLocked(ctx, a.FileSystemID)
	r.poke()
	return nil
}

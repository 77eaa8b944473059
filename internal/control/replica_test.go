package control_test

import (
	"errors"
	"testing"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine"
)

func TestReplicaHooks(t *testing.T) {
	v := newEnv(t)
	dst, err := v.r.CreateReplica(ctx, control.ReplicaInput{CreationToken: "repl-1"})
	wantErr(t, err, nil)
	again, err := v.r.CreateReplica(ctx, control.ReplicaInput{CreationToken: "repl-1"})
	if err != nil || again.ID != dst.ID {
		t.Fatalf("idempotent CreateReplica: %v %v", again.ID, err)
	}
	if !dst.Replica || dst.Protection != control.ProtectionReplicating || dst.ReplicationRole != control.RoleDestination || !dst.Encrypted {
		t.Fatalf("replica: %+v", dst)
	}
	v.waitFS(dst.ID, control.StateAvailable)
	efs, _ := v.e.FS(dst.ID)
	if m, _ := efs.Mode(); m != engine.ModeReplica {
		t.Errorf("engine mode %v", m)
	}
	mt, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: dst.ID, SubnetID: subA})
	wantErr(t, err, nil)
	if s, _ := v.mts.Spec(mt.ID); !s.ReadOnly {
		t.Error("a replica's mount target is writable")
	}
	wantErr(t, v.r.DeleteMountTarget(ctx, mt.ID), nil)
	v.waitMTGone(mt.ID)
	// Users cannot delete it or change its protection while it replicates.
	wantErr(t, v.r.DeleteFileSystem(ctx, dst.ID), control.ErrBadRequest)
	_, err = v.r.UpdateFileSystemProtection(ctx, dst.ID, ptr(control.ProtectionEnabled))
	wantErr(t, err, control.ErrReplicationAlreadyExists)
	_, err = v.r.UpdateFileSystem(ctx, control.UpdateFileSystemInput{FileSystemID: dst.ID, ThroughputMode: ptr(control.ThroughputBursting)})
	wantErr(t, err, control.ErrBadRequest)
	// Failover: replication promotes it (not here: it has no content)
	// and clears the role.
	wantErr(t, v.r.SetReplicationRole(ctx, dst.ID, ""), nil)
	wantErr(t, v.r.SetProtection(ctx, dst.ID, control.ProtectionEnabled), nil)
	wantErr(t, v.r.SetReplicationRole(ctx, dst.ID, "leader"), control.ErrBadRequest)
	wantErr(t, v.r.SetProtection(ctx, dst.ID, "OFF"), control.ErrBadRequest)
	wantErr(t, v.r.SetProtection(ctx, "fs-0123456789abcdef0", control.ProtectionEnabled), control.ErrFileSystemNotFound)
	wantErr(t, v.r.DeleteFileSystem(ctx, dst.ID), nil)
	v.waitFSGone(dst.ID)
}

func TestKeepCopyAndReset(t *testing.T) {
	v := newEnv(t)
	src := v.availableFS("src")
	efs, _ := v.e.FS(src.ID)
	cred := engine.RootCred
	ent, err := efs.Create(ctx, cred, engine.RootIno, "kept.txt", engine.CreateGuarded, engine.SetAttr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := efs.Write(ctx, cred, ent.Attr.Ino, 0, []byte("divergent")); err != nil {
		t.Fatal(err)
	}
	mt, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: src.ID, SubnetID: subA})
	wantErr(t, err, nil)
	copyID, err := v.r.KeepCopy(ctx, src.ID, "failback from us-west-2; divergent writes kept")
	wantErr(t, err, nil)
	c := v.waitFS(copyID, control.StateAvailable)
	if c.Name != "copy of "+src.ID {
		t.Errorf("copy name %q tags %v", c.Name, c.Tags)
	}
	cfs, err := v.e.FS(copyID)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cfs.Lookup(ctx, cred, engine.RootIno, "kept.txt")
	if err != nil {
		t.Fatalf("copy lacks the file: %v", err)
	}
	data, _, _, err := cfs.Read(ctx, cred, a.Ino, 0, 100)
	if err != nil || string(data) != "divergent" {
		t.Fatalf("copy content %q %v", data, err)
	}
	cmt, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: copyID, SubnetID: subA})
	wantErr(t, err, nil)
	if s, _ := v.mts.Spec(cmt.ID); !s.ReadOnly {
		t.Error("a kept copy is writable")
	}
	// Reset the original to an empty replica: same id, same mount target,
	// now served read-only on the new engine file system.
	wantErr(t, v.r.ResetToReplica(ctx, src.ID, ""), nil)
	nfs, _ := v.e.FS(src.ID)
	if nfs == efs {
		t.Fatal("same engine file system after a reset")
	}
	if m, _ := nfs.Mode(); m != engine.ModeReplica {
		t.Errorf("engine mode %v", m)
	}
	s, ok := v.mts.Spec(mt.ID)
	if !ok || s.FS != nfs || !s.ReadOnly {
		t.Errorf("mount target after reset: served %v, new fs %v, read-only %v", ok, s.FS == nfs, s.ReadOnly)
	}
	d, _ := v.r.DescribeFileSystem(ctx, src.ID)
	if !d.Replica || d.Protection != control.ProtectionReplicating || !d.Encrypted {
		t.Errorf("after reset: %+v", d)
	}
	// A restart keeps everything.
	v.reopen()
	if _, err := v.e.FS(copyID); err != nil {
		t.Error(err)
	}
	if s, ok := v.mts.Spec(mt.ID); !ok || !s.ReadOnly {
		t.Error("reset mount target after restart")
	}
	_, err = v.r.KeepCopy(ctx, "fs-0123456789abcdef0", "")
	if !errors.Is(err, control.ErrFileSystemNotFound) {
		t.Error(err)
	}
	wantErr(t, v.r.ResetToReplica(ctx, "fs-0123456789abcdef0", ""), control.ErrFileSystemNotFound)
}

// A writable clone (a drill's) is available at once, holds the origin's
// content, takes writes of its own without changing the origin, serves
// writable mount targets, and is refused for a replica with no consistent
// state yet.
func TestCloneFileSystem(t *testing.T) {
	v := newEnv(t)
	src := v.availableFS("src")
	efs, _ := v.e.FS(src.ID)
	cred := engine.RootCred
	ent, err := efs.Create(ctx, cred, engine.RootIno, "before.txt", engine.CreateGuarded, engine.SetAttr{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := efs.Write(ctx, cred, ent.Attr.Ino, 0, []byte("origin")); err != nil {
		t.Fatal(err)
	}
	c, err := v.r.CloneFileSystem(ctx, control.CloneInput{FileSystemID: src.ID, Tags: []control.Tag{{Key: "regionfs:drill", Value: "drill-1"}}})
	wantErr(t, err, nil)
	if c.LifeCycleState != control.StateAvailable || c.Name != "clone of "+src.ID || c.Protection != control.ProtectionEnabled || c.Replica {
		t.Fatalf("clone: %+v", c)
	}
	if !hasTag(c.Tags, "regionfs:clone-of", src.ID) || !hasTag(c.Tags, "regionfs:drill", "drill-1") {
		t.Errorf("clone tags %v", c.Tags)
	}
	cfs, err := v.e.FS(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cfs.Lookup(ctx, cred, engine.RootIno, "before.txt")
	if err != nil {
		t.Fatalf("clone lacks the file: %v", err)
	}
	if data, _, _, err := cfs.Read(ctx, cred, a.Ino, 0, 100); err != nil || string(data) != "origin" {
		t.Fatalf("clone content %q %v", data, err)
	}
	if _, err := cfs.Create(ctx, cred, engine.RootIno, "clone-only.txt", engine.CreateGuarded, engine.SetAttr{}, 0); err != nil {
		t.Fatalf("clone not writable: %v", err)
	}
	if _, err := efs.Lookup(ctx, cred, engine.RootIno, "clone-only.txt"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("a write to the clone reached the origin: %v", err)
	}
	mt, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: c.ID, SubnetID: subA})
	wantErr(t, err, nil)
	if s, _ := v.mts.Spec(mt.ID); s.ReadOnly {
		t.Error("a clone's mount target is read-only")
	}
	wantErr(t, v.r.DeleteMountTarget(ctx, mt.ID), nil)
	v.waitMTGone(mt.ID)
	wantErr(t, v.r.DeleteFileSystem(ctx, c.ID), nil)
	v.waitFSGone(c.ID)
	if _, err := v.e.FS(c.ID); err == nil {
		t.Error("the clone's engine file system outlived it")
	}

	// A replica that has not finished its initial sync has nothing to clone.
	dst, err := v.r.CreateReplica(ctx, control.ReplicaInput{CreationToken: "repl-clone"})
	wantErr(t, err, nil)
	_, err = v.r.CloneFileSystem(ctx, control.CloneInput{FileSystemID: dst.ID})
	wantErr(t, err, control.ErrIncorrectLifeCycleState)
	_, err = v.r.CloneFileSystem(ctx, control.CloneInput{FileSystemID: "fs-0123456789abcdef0"})
	wantErr(t, err, control.ErrFileSystemNotFound)
	_, err = v.r.CloneFileSystem(ctx, control.CloneInput{FileSystemID: src.ID, Tags: []control.Tag{{Key: "", Value: "x"}}})
	wantErr(t, err, control.ErrBadRequest)
	fss, _, _ := v.r.DescribeFileSystems(ctx, control.FileSystemQuery{})
	if len(fss) != 2 {
		t.Errorf("%d file systems after refused clones, want 2", len(fss))
	}
}

func hasTag(tags []control.Tag, k, val string) bool {
	for _, t := range tags {
		if t.Key == k && t.Value == val {
			return true
		}
	}
	return false
}

// A destination is tagged regionfs:replica-of (no Name tag); promotion
// removes that tag and keeps the user's.
func TestReplicaTagsAfterPromotion(t *testing.T) {
	v := newEnv(t)
	arn := "arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/fs-0123456789abcdef0"
	dst, err := v.r.CreateReplica(ctx, control.ReplicaInput{CreationToken: "repl-tags", SourceARN: arn,
		Tags: []control.Tag{{Key: "team", Value: "dr"}}})
	wantErr(t, err, nil)
	if !hasTag(dst.Tags, control.TagReplicaOf, arn) || !hasTag(dst.Tags, "team", "dr") {
		t.Fatalf("destination tags %+v", dst.Tags)
	}
	for _, tg := range dst.Tags {
		if tg.Key == "Name" {
			t.Fatalf("destination tagged Name=%s", tg.Value)
		}
	}
	wantErr(t, v.r.SetReplicationRole(ctx, dst.ID, ""), nil)
	got, err := v.r.DescribeFileSystem(ctx, dst.ID)
	wantErr(t, err, nil)
	if len(got.Tags) != 1 || !hasTag(got.Tags, "team", "dr") || got.Name != "" {
		t.Fatalf("promoted file system: name %q, tags %+v", got.Name, got.Tags)
	}
	// A source keeps its tags when its configuration ends.
	wantErr(t, v.r.SetReplicationRole(ctx, dst.ID, control.RoleSource), nil)
	wantErr(t, v.r.TagResource(ctx, dst.ID, []control.Tag{{Key: control.TagReplicaOf, Value: "user-set"}}), nil)
	wantErr(t, v.r.SetReplicationRole(ctx, dst.ID, ""), nil)
	got, _ = v.r.DescribeFileSystem(ctx, dst.ID)
	if !hasTag(got.Tags, control.TagReplicaOf, "user-set") {
		t.Fatalf("a source's tags changed: %+v", got.Tags)
	}
}

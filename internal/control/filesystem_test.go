package control_test

import (
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

func TestCreateFileSystemRules(t *testing.T) {
	long := strings.Repeat("x", 129)
	var many []control.Tag
	for i := range 51 {
		many = append(many, control.Tag{Key: "k" + string(rune('a'+i%26)) + strings.Repeat("z", i/26), Value: "v"})
	}
	tests := []struct {
		name string
		in   control.CreateFileSystemInput
		err  error
		want func(t *testing.T, fs control.FileSystem)
	}{
		{name: "defaults", in: control.CreateFileSystemInput{}, want: func(t *testing.T, fs control.FileSystem) {
			if fs.PerformanceMode != control.PerformanceGeneralPurpose || fs.ThroughputMode != control.ThroughputBursting || fs.Encrypted || fs.KMSKeyARN != "" ||
				fs.Protection != control.ProtectionEnabled || fs.LifeCycleState != control.StateCreating || fs.OwnerID != account || fs.ProvisionedThroughputMibps != 0 {
				t.Errorf("defaults: %+v", fs)
			}
			if !regexp.MustCompile(`^fs-0[0-9a-f]{16}$`).MatchString(fs.ID) || fs.ARN != "arn:aws:elasticfilesystem:us-east-1:"+account+":file-system/"+fs.ID {
				t.Errorf("id %q arn %q", fs.ID, fs.ARN)
			}
		}},
		{name: "encrypted default key", in: control.CreateFileSystemInput{Encrypted: true}, want: func(t *testing.T, fs control.FileSystem) {
			if !fs.Encrypted || fs.KMSKeyARN != "arn:aws:kms:us-east-1:"+account+":key/1234abcd-12ab-34cd-56ef-1234567890ab" {
				t.Errorf("encrypted: %v %q", fs.Encrypted, fs.KMSKeyARN)
			}
		}},
		{name: "key by alias", in: control.CreateFileSystemInput{Encrypted: true, KMSKeyID: "alias/other"}, want: wantKey("mrk-0123456789abcdef0123456789abcdef")},
		{name: "key by id", in: control.CreateFileSystemInput{Encrypted: true, KMSKeyID: "mrk-0123456789abcdef0123456789abcdef"}, want: wantKey("mrk-0123456789abcdef0123456789abcdef")},
		{name: "key by ARN", in: control.CreateFileSystemInput{Encrypted: true, KMSKeyID: "arn:aws:kms:us-east-1:" + account + ":key/1234abcd-12ab-34cd-56ef-1234567890ab"}, want: wantKey("1234abcd-12ab-34cd-56ef-1234567890ab")},
		{name: "key by alias ARN", in: control.CreateFileSystemInput{Encrypted: true, KMSKeyID: "arn:aws:kms:us-east-1:" + account + ":alias/other"}, want: wantKey("mrk-0123456789abcdef0123456789abcdef")},
		{name: "key of another region", in: control.CreateFileSystemInput{Encrypted: true, KMSKeyID: "arn:aws:kms:us-west-2:" + account + ":alias/other"}, err: control.ErrBadRequest},
		{name: "key of another account", in: control.CreateFileSystemInput{Encrypted: true, KMSKeyID: "arn:aws:kms:us-east-1:210987654321:alias/other"}, err: control.ErrBadRequest},
		{name: "unknown key", in: control.CreateFileSystemInput{Encrypted: true, KMSKeyID: "alias/nope"}, err: control.ErrBadRequest},
		{name: "key without encrypted", in: control.CreateFileSystemInput{KMSKeyID: "alias/other"}, err: control.ErrBadRequest},
		{name: "bad performance mode", in: control.CreateFileSystemInput{PerformanceMode: "fast"}, err: control.ErrBadRequest},
		{name: "maxIO", in: control.CreateFileSystemInput{PerformanceMode: control.PerformanceMaxIO}, want: func(t *testing.T, fs control.FileSystem) {
			if fs.PerformanceMode != control.PerformanceMaxIO {
				t.Error(fs.PerformanceMode)
			}
		}},
		{name: "bad throughput mode", in: control.CreateFileSystemInput{ThroughputMode: "Bursting"}, err: control.ErrBadRequest},
		{name: "provisioned", in: control.CreateFileSystemInput{ThroughputMode: control.ThroughputProvisioned, ProvisionedThroughputMibps: ptr(128.5)}, want: func(t *testing.T, fs control.FileSystem) {
			if fs.ThroughputMode != control.ThroughputProvisioned || fs.ProvisionedThroughputMibps != 128.5 {
				t.Error(fs.ThroughputMode, fs.ProvisionedThroughputMibps)
			}
		}},
		{name: "provisioned without value", in: control.CreateFileSystemInput{ThroughputMode: control.ThroughputProvisioned}, err: control.ErrBadRequest},
		{name: "provisioned below 1", in: control.CreateFileSystemInput{ThroughputMode: control.ThroughputProvisioned, ProvisionedThroughputMibps: ptr(0.5)}, err: control.ErrBadRequest},
		{name: "provisioned over the limit", in: control.CreateFileSystemInput{ThroughputMode: control.ThroughputProvisioned, ProvisionedThroughputMibps: ptr(3415.0)}, err: control.ErrThroughputLimitExceeded},
		{name: "value without provisioned", in: control.CreateFileSystemInput{ThroughputMode: control.ThroughputElastic, ProvisionedThroughputMibps: ptr(10.0)}, err: control.ErrBadRequest},
		{name: "value with default mode", in: control.CreateFileSystemInput{ProvisionedThroughputMibps: ptr(10.0)}, err: control.ErrBadRequest},
		{name: "maxIO elastic", in: control.CreateFileSystemInput{PerformanceMode: control.PerformanceMaxIO, ThroughputMode: control.ThroughputElastic}, err: control.ErrBadRequest},
		{name: "one zone", in: control.CreateFileSystemInput{AvailabilityZoneName: "us-east-1b"}, want: func(t *testing.T, fs control.FileSystem) {
			if fs.AvailabilityZoneName != "us-east-1b" || fs.AvailabilityZoneID != "use1-az2" {
				t.Error(fs.AvailabilityZoneName, fs.AvailabilityZoneID)
			}
		}},
		{name: "unknown zone", in: control.CreateFileSystemInput{AvailabilityZoneName: "us-east-1z"}, err: control.ErrUnsupportedAvailabilityZone},
		{name: "one zone maxIO", in: control.CreateFileSystemInput{AvailabilityZoneName: "us-east-1a", PerformanceMode: control.PerformanceMaxIO}, err: control.ErrBadRequest},
		{name: "name tag", in: control.CreateFileSystemInput{Tags: []control.Tag{{"b", "2"}, {"Name", "demo"}, {"a", ""}}}, want: func(t *testing.T, fs control.FileSystem) {
			if fs.Name != "demo" || !cmp.Equal(fs.Tags, []control.Tag{{"Name", "demo"}, {"a", ""}, {"b", "2"}}) {
				t.Errorf("name %q tags %v", fs.Name, fs.Tags)
			}
		}},
		{name: "unicode tag", in: control.CreateFileSystemInput{Tags: []control.Tag{{"équipe 1", "données/été=+-@_.:"}}}},
		{name: "aws prefix", in: control.CreateFileSystemInput{Tags: []control.Tag{{"AwS:x", "v"}}}, err: control.ErrBadRequest},
		{name: "empty key", in: control.CreateFileSystemInput{Tags: []control.Tag{{"", "v"}}}, err: control.ErrBadRequest},
		{name: "long key", in: control.CreateFileSystemInput{Tags: []control.Tag{{long, "v"}}}, err: control.ErrBadRequest},
		{name: "long value", in: control.CreateFileSystemInput{Tags: []control.Tag{{"k", long + long}}}, err: control.ErrBadRequest},
		{name: "bad key chars", in: control.CreateFileSystemInput{Tags: []control.Tag{{"a;b", "v"}}}, err: control.ErrBadRequest},
		{name: "bad value chars", in: control.CreateFileSystemInput{Tags: []control.Tag{{"a", "v*"}}}, err: control.ErrBadRequest},
		{name: "duplicate keys", in: control.CreateFileSystemInput{Tags: []control.Tag{{"a", "1"}, {"a", "2"}}}, err: control.ErrBadRequest},
		{name: "too many tags", in: control.CreateFileSystemInput{Tags: many}, err: control.ErrBadRequest},
	}
	v := newEnv(t)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(v.e.Names())
			tc.in.CreationToken = "token-" + string(rune('A'+i))
			fs, err := v.r.CreateFileSystem(ctx, tc.in)
			wantErr(t, err, tc.err)
			if tc.err != nil {
				if n := len(v.e.Names()); n != before {
					t.Errorf("a refused create left %d engine file systems (was %d)", n, before)
				}
				if fss, _, _ := v.r.DescribeFileSystems(ctx, control.FileSystemQuery{CreationToken: tc.in.CreationToken}); len(fss) != 0 {
					t.Errorf("a refused create is described: %+v", fss)
				}
				return
			}
			if _, err := v.e.FS(fs.ID); err != nil {
				t.Errorf("no engine file system named %s: %v", fs.ID, err)
			}
			if tc.want != nil {
				tc.want(t, fs)
			}
		})
	}
}

func wantKey(id string) func(t *testing.T, fs control.FileSystem) {
	return func(t *testing.T, fs control.FileSystem) {
		if want := "arn:aws:kms:us-east-1:" + account + ":key/" + id; fs.KMSKeyARN != want {
			t.Errorf("KMS key %q, want %q", fs.KMSKeyARN, want)
		}
	}
}

func TestEncryptionReachesTheEngine(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("enc", func(in *control.CreateFileSystemInput) { in.Encrypted = true; in.KMSKeyID = "alias/other" })
	plain := v.availableFS("plain")
	v.close()
	// Without the key that wraps its data key, the engine cannot open the
	// encrypted file system; the plain one does not need any key.
	k1, err := kms.Generate("1234abcd-12ab-34cd-56ef-1234567890ab", control.DefaultKMSKey)
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := kms.New(k1)
	e, err := engine.Open(ctx, engine.Options{KV: v.kv, Disk: v.disk, Keyring: ring, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		_, ferr := e.FS(fs.ID)
		_, perr := e.FS(plain.ID)
		e.Close()
		if ferr == nil || perr != nil {
			t.Fatalf("without its key: encrypted fs %v, plain fs %v", ferr, perr)
		}
	} else if !errors.Is(err, kms.ErrUnknownKey) {
		t.Fatalf("engine without the key: %v", err)
	}
	v.open()
	if _, err := v.e.FS(fs.ID); err != nil {
		t.Fatalf("encrypted file system lost: %v", err)
	}
}

func TestNoKeyringRefusesEncryption(t *testing.T) {
	v := newEnv(t, func(o *control.Options) { o.Keyring = nil })
	_, err := v.r.CreateFileSystem(ctx, control.CreateFileSystemInput{CreationToken: "t", Encrypted: true})
	wantErr(t, err, control.ErrBadRequest)
	v.createFS("plain")
}

func TestCreationTokenIdempotency(t *testing.T) {
	v := newEnv(t)
	fs := v.createFS("tok")
	_, err := v.r.CreateFileSystem(ctx, control.CreateFileSystemInput{CreationToken: "tok", PerformanceMode: control.PerformanceMaxIO})
	wantErr(t, err, control.ErrFileSystemAlreadyExists)
	var e *control.Error
	errors.As(err, &e)
	if e.ResourceID != fs.ID {
		t.Errorf("ResourceID %q, want %q", e.ResourceID, fs.ID)
	}
	if n := len(v.e.Names()); n != 1 {
		t.Errorf("%d engine file systems", n)
	}
	// After a delete the token is free again.
	v.waitFS(fs.ID, control.StateAvailable)
	wantErr(t, v.r.DeleteFileSystem(ctx, fs.ID), nil)
	v.waitFSGone(fs.ID)
	fs2 := v.createFS("tok")
	if fs2.ID == fs.ID {
		t.Error("same id reused")
	}
	_, err = v.r.CreateFileSystem(ctx, control.CreateFileSystemInput{})
	wantErr(t, err, control.ErrBadRequest)
}

func TestFileSystemLimit(t *testing.T) {
	v := newEnv(t, func(o *control.Options) { o.MaxFileSystems = 2 })
	v.createFS("a")
	v.createFS("b")
	_, err := v.r.CreateFileSystem(ctx, control.CreateFileSystemInput{CreationToken: "c"})
	wantErr(t, err, control.ErrFileSystemLimitExceeded)
}

func TestFileSystemLifeCycle(t *testing.T) {
	v := newEnv(t, func(o *control.Options) { o.TransitionDelay = time.Minute })
	step := func() { v.clock.Advance(time.Minute); v.r.PokeForTest() }
	fs := v.createFS("life")
	if fs.LifeCycleState != control.StateCreating {
		t.Fatalf("new file system is %s", fs.LifeCycleState)
	}
	if _, err := v.e.FS(fs.ID); err != nil {
		t.Fatalf("no engine file system while creating: %v", err)
	}
	step()
	fs = v.waitFS(fs.ID, control.StateAvailable)
	if fs.NumberOfMountTargets != 0 || fs.Size.Timestamp.IsZero() {
		t.Errorf("description: %+v", fs)
	}
	mt, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, nil)
	wantErr(t, v.r.DeleteFileSystem(ctx, fs.ID), control.ErrFileSystemInUse)
	wantErr(t, v.r.DeleteMountTarget(ctx, mt.ID), nil)
	wantErr(t, v.r.DeleteMountTarget(ctx, mt.ID), nil) // already deleting
	// A mount target being deleted still holds the file system.
	wantErr(t, v.r.DeleteFileSystem(ctx, fs.ID), control.ErrFileSystemInUse)
	step()
	v.waitMTGone(mt.ID)
	wantErr(t, v.r.DeleteFileSystem(ctx, fs.ID), nil)
	wantErr(t, v.r.DeleteFileSystem(ctx, fs.ID), nil) // already deleting
	if d, _ := v.r.DescribeFileSystem(ctx, fs.ID); d.LifeCycleState != control.StateDeleting {
		t.Errorf("state %s", d.LifeCycleState)
	}
	_, err = v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, control.ErrIncorrectLifeCycleState)
	step()
	v.waitFSGone(fs.ID)
	if _, err := v.e.FS(fs.ID); !errors.Is(err, engine.ErrFSNotFound) {
		t.Errorf("engine file system survives its deletion: %v", err)
	}
	wantErr(t, v.r.DeleteFileSystem(ctx, fs.ID), control.ErrFileSystemNotFound)
	_, err = v.r.DescribeFileSystem(ctx, fs.ID)
	wantErr(t, err, control.ErrFileSystemNotFound)
}

// TestTransitionDelay runs in a synctest bubble: the transition worker's
// timers run on the bubble's clock, and synctest.Wait returns once the
// worker has done everything it can do now.
func TestTransitionDelay(t *testing.T) {
	synctest.Test(t, testTransitionDelay)
}

func testTransitionDelay(t *testing.T) {
	v := newEnv(t, func(o *control.Options) { o.TransitionDelay = time.Hour; o.Clock = time.Now })
	fs := v.createFS("slow")
	state := func() control.LifeCycleState {
		synctest.Wait()
		got, _ := v.r.DescribeFileSystem(ctx, fs.ID)
		return got.LifeCycleState
	}
	time.Sleep(time.Hour - time.Second) // on the bubble's fake clock
	if got := state(); got != control.StateCreating {
		t.Fatalf("available before the delay: %s", got)
	}
	// A restart resumes the transition, timed from when it began.
	v.reopen()
	if got := state(); got != control.StateCreating {
		t.Fatalf("restart lost the transition: %s", got)
	}
	time.Sleep(time.Second) // on the bubble's fake clock
	if got := state(); got != control.StateAvailable {
		t.Fatalf("not available once the delay passed: %s", got)
	}
	wantErr(t, v.r.DeleteFileSystem(ctx, fs.ID), nil)
	v.reopen()
	if got := state(); got != control.StateDeleting {
		t.Fatalf("restart lost the deletion: %s", got)
	}
	if _, err := v.e.FS(fs.ID); err != nil {
		t.Fatalf("engine file system deleted before the delay: %v", err)
	}
	v.reopen(func(o *control.Options) { o.TransitionDelay = 0 })
	v.waitFSGone(fs.ID)
}

func TestCrashBetweenRecordAndEngine(t *testing.T) {
	v := newEnv(t)
	// The first synced commit of CreateFileSystem is the control record;
	// a crash right after it leaves no engine file system.
	var k2 *kv.Memory
	mem := v.kv
	mem.SetSyncHook(func() {
		if k2 == nil {
			k2 = mem.CrashClone()
		}
	})
	fs := v.createFS("crash")
	v.kv.SetSyncHook(nil)
	d2 := v.disk.CrashClone()
	v.close()
	v.kv, v.disk = k2, d2
	v.open()
	got := v.waitFS(fs.ID, control.StateAvailable)
	if got.CreationToken != "crash" {
		t.Errorf("token %q", got.CreationToken)
	}
	if _, err := v.e.FS(fs.ID); err != nil {
		t.Fatalf("Open did not create the engine file system: %v", err)
	}
	// kill -9 after acknowledged changes keeps them.
	wantErr(t, v.r.TagResource(ctx, fs.ID, []control.Tag{{"k", "v"}}), nil)
	v.crash()
	got = v.waitFS(fs.ID, control.StateAvailable)
	if !slices.Equal(got.Tags, []control.Tag{{"k", "v"}}) {
		t.Errorf("tags after a crash: %v", got.Tags)
	}
}

func TestUpdateFileSystem(t *testing.T) {
	v := newEnv(t, func(o *control.Options) { o.TransitionDelay = time.Minute })
	fs := v.createFS("upd")
	upd := func(mode *string, prov *float64) (control.FileSystem, error) {
		return v.r.UpdateFileSystem(ctx, control.UpdateFileSystemInput{FileSystemID: fs.ID, ThroughputMode: mode, ProvisionedThroughputMibps: prov})
	}
	settle := func() {
		v.clock.Advance(time.Minute)
		v.r.PokeForTest()
		v.waitFS(fs.ID, control.StateAvailable)
	}
	_, err := upd(ptr(control.ThroughputElastic), nil)
	wantErr(t, err, control.ErrIncorrectLifeCycleState) // still creating
	settle()
	_, err = upd(ptr("turbo"), nil)
	wantErr(t, err, control.ErrBadRequest)
	_, err = upd(ptr(control.ThroughputProvisioned), nil)
	wantErr(t, err, control.ErrBadRequest)
	_, err = upd(nil, ptr(100.0))
	wantErr(t, err, control.ErrBadRequest) // bursting
	_, err = upd(ptr(control.ThroughputProvisioned), ptr(5000.0))
	wantErr(t, err, control.ErrThroughputLimitExceeded)
	got, err := upd(ptr(control.ThroughputProvisioned), ptr(100.0))
	wantErr(t, err, nil)
	if got.LifeCycleState != control.StateUpdating || got.ThroughputMode != control.ThroughputProvisioned || got.ProvisionedThroughputMibps != 100 {
		t.Fatalf("after update: %+v", got)
	}
	_, err = upd(nil, ptr(200.0))
	wantErr(t, err, control.ErrIncorrectLifeCycleState) // updating
	settle()
	got, err = upd(nil, ptr(200.0)) // increases are not restricted
	wantErr(t, err, nil)
	if got.ProvisionedThroughputMibps != 200 {
		t.Fatal(got.ProvisionedThroughputMibps)
	}
	settle()
	_, err = upd(nil, ptr(50.0))
	wantErr(t, err, control.ErrTooManyRequests)
	_, err = upd(ptr(control.ThroughputBursting), nil)
	wantErr(t, err, control.ErrTooManyRequests)
	got, err = upd(nil, nil)
	wantErr(t, err, nil) // nothing to change
	if got.LifeCycleState != control.StateAvailable {
		t.Fatal(got.LifeCycleState)
	}
	v.clock.Advance(24 * time.Hour)
	got, err = upd(ptr(control.ThroughputElastic), nil)
	wantErr(t, err, nil)
	if got.ThroughputMode != control.ThroughputElastic || got.ProvisionedThroughputMibps != 0 {
		t.Fatalf("%+v", got)
	}
	settle()
	v.reopen(func(o *control.Options) { o.ThroughputCooldown = -1 })
	_, err = upd(ptr(control.ThroughputBursting), nil)
	wantErr(t, err, nil) // no cooldown configured
	_, err = v.r.UpdateFileSystem(ctx, control.UpdateFileSystemInput{FileSystemID: "fs-0123456789abcdef0", ThroughputMode: ptr(control.ThroughputElastic)})
	wantErr(t, err, control.ErrFileSystemNotFound)
}

func TestFileSystemProtection(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("prot")
	mt, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, nil)
	if s, _ := v.mts.Spec(mt.ID); s.ReadOnly {
		t.Fatal("new mount target is read-only")
	}
	set := func(p string) (string, error) { return v.r.UpdateFileSystemProtection(ctx, fs.ID, &p) }
	got, err := set(control.ProtectionDisabled)
	wantErr(t, err, nil)
	if got != control.ProtectionDisabled {
		t.Fatal(got)
	}
	if s, _ := v.mts.Spec(mt.ID); !s.ReadOnly {
		t.Error("protection DISABLED leaves the mount target writable")
	}
	if d, _ := v.r.DescribeFileSystem(ctx, fs.ID); d.Protection != control.ProtectionDisabled {
		t.Error(d.Protection)
	}
	if got, err := v.r.UpdateFileSystemProtection(ctx, fs.ID, nil); err != nil || got != control.ProtectionDisabled {
		t.Error(got, err)
	}
	_, err = set(control.ProtectionReplicating)
	wantErr(t, err, control.ErrBadRequest)
	_, err = set("enabled")
	wantErr(t, err, control.ErrBadRequest)
	_, err = set(control.ProtectionEnabled)
	wantErr(t, err, nil)
	if s, _ := v.mts.Spec(mt.ID); s.ReadOnly {
		t.Error("protection ENABLED leaves the mount target read-only")
	}
	wantErr(t, v.r.SetReplicationRole(ctx, fs.ID, control.RoleSource), nil)
	_, err = set(control.ProtectionDisabled)
	wantErr(t, err, control.ErrReplicationAlreadyExists)
	_, err = v.r.UpdateFileSystemProtection(ctx, "fs-0123456789abcdef0", ptr(control.ProtectionDisabled))
	wantErr(t, err, control.ErrFileSystemNotFound)
	v2 := newEnv(t, func(o *control.Options) { o.TransitionDelay = time.Hour })
	c := v2.createFS("creating")
	_, err = v2.r.UpdateFileSystemProtection(ctx, c.ID, ptr(control.ProtectionDisabled))
	wantErr(t, err, control.ErrIncorrectLifeCycleState)
}

func TestDescribeFileSystemsPaging(t *testing.T) {
	v := newEnv(t)
	var ids []string
	for i := range 5 {
		v.clock.Advance(time.Second)
		ids = append(ids, v.createFS("p"+string(rune('0'+i))).ID)
	}
	var got []string
	var pages int
	marker := ""
	for {
		fss, next, err := v.r.DescribeFileSystems(ctx, control.FileSystemQuery{Page: control.Page{Marker: marker, Max: 2}})
		wantErr(t, err, nil)
		pages++
		for _, f := range fss {
			got = append(got, f.ID)
		}
		if next == "" {
			break
		}
		marker = next
		if pages == 1 {
			// The item a marker points at may be deleted meanwhile.
			v.waitFS(ids[2], control.StateAvailable)
			wantErr(t, v.r.DeleteFileSystem(ctx, ids[2]), nil)
			v.waitFSGone(ids[2])
		}
	}
	want := []string{ids[0], ids[1], ids[3], ids[4]}
	if !slices.Equal(got, want) || pages != 2 {
		t.Errorf("pages %d: %v, want %v", pages, got, want)
	}
	all, next, err := v.r.DescribeFileSystems(ctx, control.FileSystemQuery{})
	if err != nil || next != "" || len(all) != 4 {
		t.Errorf("unpaged: %d %q %v", len(all), next, err)
	}
	_, _, err = v.r.DescribeFileSystems(ctx, control.FileSystemQuery{Page: control.Page{Marker: "garbage!"}})
	wantErr(t, err, control.ErrBadRequest)
	_, _, err = v.r.DescribeFileSystems(ctx, control.FileSystemQuery{Page: control.Page{Max: -1}})
	wantErr(t, err, control.ErrBadRequest)
	one, _, err := v.r.DescribeFileSystems(ctx, control.FileSystemQuery{CreationToken: "p3"})
	if err != nil || len(one) != 1 || one[0].ID != ids[3] {
		t.Errorf("by token: %v %v", one, err)
	}
	none, _, err := v.r.DescribeFileSystems(ctx, control.FileSystemQuery{CreationToken: "nope"})
	if err != nil || len(none) != 0 {
		t.Errorf("unknown token: %v %v", none, err)
	}
	_, _, err = v.r.DescribeFileSystems(ctx, control.FileSystemQuery{FileSystemID: ids[3], CreationToken: "p1"})
	wantErr(t, err, control.ErrFileSystemNotFound)
	_, _, err = v.r.DescribeFileSystems(ctx, control.FileSystemQuery{FileSystemID: "fs-0123456789abcdef0"})
	wantErr(t, err, control.ErrFileSystemNotFound)
}

func TestReferencesByARN(t *testing.T) {
	v := newEnv(t)
	fs := v.createFS("arn")
	for _, tc := range []struct {
		ref string
		err error
	}{
		{fs.ID, nil},
		{fs.ARN, nil},
		{"arn:aws:elasticfilesystem:us-west-2:" + account + ":file-system/" + fs.ID, control.ErrFileSystemNotFound},
		{"arn:aws:elasticfilesystem:us-east-1:210987654321:file-system/" + fs.ID, control.ErrFileSystemNotFound},
		{"arn:aws-cn:elasticfilesystem:us-east-1:" + account + ":file-system/" + fs.ID, control.ErrFileSystemNotFound},
		{"arn:aws:elasticfilesystem:us-east-1:" + account + ":access-point/" + fs.ID, control.ErrBadRequest},
		{"arn:aws:s3:us-east-1:" + account + ":file-system/" + fs.ID, control.ErrBadRequest},
		{"fs-12", control.ErrBadRequest},
		{"FS-0123456789ABCDEF0", control.ErrBadRequest},
		{"fs-01234567", control.ErrFileSystemNotFound},
	} {
		_, err := v.r.DescribeFileSystem(ctx, tc.ref)
		if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.ref, err, tc.err)
		}
	}
}

func TestAccountPreferences(t *testing.T) {
	v := newEnv(t)
	if p := v.r.DescribeAccountPreferences(ctx); p.ResourceIDType != control.LongID || !slices.Equal(p.Resources, []string{"FILE_SYSTEM", "MOUNT_TARGET"}) {
		t.Fatalf("default: %+v", p)
	}
	_, err := v.r.PutAccountPreferences(ctx, "MEDIUM_ID")
	wantErr(t, err, control.ErrBadRequest)
	p, err := v.r.PutAccountPreferences(ctx, control.ShortID)
	wantErr(t, err, nil)
	if p.ResourceIDType != control.ShortID {
		t.Fatal(p)
	}
	v.reopen()
	if p := v.r.DescribeAccountPreferences(ctx); p.ResourceIDType != control.ShortID {
		t.Fatalf("after restart: %+v", p)
	}
	fs := v.availableFS("short")
	if !regexp.MustCompile(`^fs-[0-9a-f]{8}$`).MatchString(fs.ID) {
		t.Errorf("short id %q", fs.ID)
	}
	mt, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, nil)
	if !regexp.MustCompile(`^fsmt-[0-9a-f]{8}$`).MatchString(mt.ID) {
		t.Errorf("short mount target id %q", mt.ID)
	}
}

func TestClosedRegion(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("c")
	v.r.Close()
	_, err := v.r.CreateFileSystem(ctx, control.CreateFileSystemInput{CreationToken: "x"})
	if !errors.Is(err, control.ErrClosed) {
		t.Errorf("create after close: %v", err)
	}
	if err := v.r.DeleteFileSystem(ctx, fs.ID); !errors.Is(err, control.ErrClosed) {
		t.Errorf("delete after close: %v", err)
	}
	wantErr(t, v.r.Close(), nil)
}

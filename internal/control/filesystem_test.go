package control

import (
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/kms"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

func TestCreateFileSystemRules(t *testing.T) {
	long := strings.Repeat("x", 129)
	var many []Tag
	for i := range 51 {
		many = append(many, Tag{Key: "k" + string(rune('a'+i%26)) + strings.Repeat("z", i/26), Value: "v"})
	}
	tests := []struct {
		name string
		in   CreateFileSystemInput
		err  error
		want func(t *testing.T, fs FileSystem)
	}{
		{name: "defaults", in: CreateFileSystemInput{}, want: func(t *testing.T, fs FileSystem) {
			if fs.PerformanceMode != PerformanceGeneralPurpose || fs.ThroughputMode != ThroughputBursting || fs.Encrypted || fs.KMSKeyARN != "" ||
				fs.Protection != ProtectionEnabled || fs.LifeCycleState != StateCreating || fs.OwnerID != account || fs.ProvisionedThroughputMibps != 0 {
				t.Errorf("defaults: %+v", fs)
			}
			if !regexp.MustCompile(`^fs-0[0-9a-f]{16}$`).MatchString(fs.ID) || fs.ARN != "arn:aws:elasticfilesystem:us-east-1:"+account+":file-system/"+fs.ID {
				t.Errorf("id %q arn %q", fs.ID, fs.ARN)
			}
		}},
		{name: "encrypted default key", in: CreateFileSystemInput{Encrypted: true}, want: func(t *testing.T, fs FileSystem) {
			if !fs.Encrypted || fs.KMSKeyARN != "arn:aws:kms:us-east-1:"+account+":key/1234abcd-12ab-34cd-56ef-1234567890ab" {
				t.Errorf("encrypted: %v %q", fs.Encrypted, fs.KMSKeyARN)
			}
		}},
		{name: "key by alias", in: CreateFileSystemInput{Encrypted: true, KMSKeyID: "alias/other"}, want: wantKey("mrk-0123456789abcdef0123456789abcdef")},
		{name: "key by id", in: CreateFileSystemInput{Encrypted: true, KMSKeyID: "mrk-0123456789abcdef0123456789abcdef"}, want: wantKey("mrk-0123456789abcdef0123456789abcdef")},
		{name: "key by ARN", in: CreateFileSystemInput{Encrypted: true, KMSKeyID: "arn:aws:kms:us-east-1:" + account + ":key/1234abcd-12ab-34cd-56ef-1234567890ab"}, want: wantKey("1234abcd-12ab-34cd-56ef-1234567890ab")},
		{name: "key by alias ARN", in: CreateFileSystemInput{Encrypted: true, KMSKeyID: "arn:aws:kms:us-east-1:" + account + ":alias/other"}, want: wantKey("mrk-0123456789abcdef0123456789abcdef")},
		{name: "key of another region", in: CreateFileSystemInput{Encrypted: true, KMSKeyID: "arn:aws:kms:us-west-2:" + account + ":alias/other"}, err: ErrBadRequest},
		{name: "key of another account", in: CreateFileSystemInput{Encrypted: true, KMSKeyID: "arn:aws:kms:us-east-1:210987654321:alias/other"}, err: ErrBadRequest},
		{name: "unknown key", in: CreateFileSystemInput{Encrypted: true, KMSKeyID: "alias/nope"}, err: ErrBadRequest},
		{name: "key without encrypted", in: CreateFileSystemInput{KMSKeyID: "alias/other"}, err: ErrBadRequest},
		{name: "bad performance mode", in: CreateFileSystemInput{PerformanceMode: "fast"}, err: ErrBadRequest},
		{name: "maxIO", in: CreateFileSystemInput{PerformanceMode: PerformanceMaxIO}, want: func(t *testing.T, fs FileSystem) {
			if fs.PerformanceMode != PerformanceMaxIO {
				t.Error(fs.PerformanceMode)
			}
		}},
		{name: "bad throughput mode", in: CreateFileSystemInput{ThroughputMode: "Bursting"}, err: ErrBadRequest},
		{name: "provisioned", in: CreateFileSystemInput{ThroughputMode: ThroughputProvisioned, ProvisionedThroughputMibps: ptr(128.5)}, want: func(t *testing.T, fs FileSystem) {
			if fs.ThroughputMode != ThroughputProvisioned || fs.ProvisionedThroughputMibps != 128.5 {
				t.Error(fs.ThroughputMode, fs.ProvisionedThroughputMibps)
			}
		}},
		{name: "provisioned without value", in: CreateFileSystemInput{ThroughputMode: ThroughputProvisioned}, err: ErrBadRequest},
		{name: "provisioned below 1", in: CreateFileSystemInput{ThroughputMode: ThroughputProvisioned, ProvisionedThroughputMibps: ptr(0.5)}, err: ErrBadRequest},
		{name: "provisioned over the limit", in: CreateFileSystemInput{ThroughputMode: ThroughputProvisioned, ProvisionedThroughputMibps: ptr(3415.0)}, err: ErrThroughputLimitExceeded},
		{name: "value without provisioned", in: CreateFileSystemInput{ThroughputMode: ThroughputElastic, ProvisionedThroughputMibps: ptr(10.0)}, err: ErrBadRequest},
		{name: "value with default mode", in: CreateFileSystemInput{ProvisionedThroughputMibps: ptr(10.0)}, err: ErrBadRequest},
		{name: "maxIO elastic", in: CreateFileSystemInput{PerformanceMode: PerformanceMaxIO, ThroughputMode: ThroughputElastic}, err: ErrBadRequest},
		{name: "one zone", in: CreateFileSystemInput{AvailabilityZoneName: "us-east-1b"}, want: func(t *testing.T, fs FileSystem) {
			if fs.AvailabilityZoneName != "us-east-1b" || fs.AvailabilityZoneID != "use1-az2" {
				t.Error(fs.AvailabilityZoneName, fs.AvailabilityZoneID)
			}
		}},
		{name: "unknown zone", in: CreateFileSystemInput{AvailabilityZoneName: "us-east-1z"}, err: ErrUnsupportedAvailabilityZone},
		{name: "one zone maxIO", in: CreateFileSystemInput{AvailabilityZoneName: "us-east-1a", PerformanceMode: PerformanceMaxIO}, err: ErrBadRequest},
		{name: "name tag", in: CreateFileSystemInput{Tags: []Tag{{"b", "2"}, {"Name", "demo"}, {"a", ""}}}, want: func(t *testing.T, fs FileSystem) {
			if fs.Name != "demo" || !cmp.Equal(fs.Tags, []Tag{{"Name", "demo"}, {"a", ""}, {"b", "2"}}) {
				t.Errorf("name %q tags %v", fs.Name, fs.Tags)
			}
		}},
		{name: "unicode tag", in: CreateFileSystemInput{Tags: []Tag{{"équipe 1", "données/été=+-@_.:"}}}},
		{name: "aws prefix", in: CreateFileSystemInput{Tags: []Tag{{"AwS:x", "v"}}}, err: ErrBadRequest},
		{name: "empty key", in: CreateFileSystemInput{Tags: []Tag{{"", "v"}}}, err: ErrBadRequest},
		{name: "long key", in: CreateFileSystemInput{Tags: []Tag{{long, "v"}}}, err: ErrBadRequest},
		{name: "long value", in: CreateFileSystemInput{Tags: []Tag{{"k", long + long}}}, err: ErrBadRequest},
		{name: "bad key chars", in: CreateFileSystemInput{Tags: []Tag{{"a;b", "v"}}}, err: ErrBadRequest},
		{name: "bad value chars", in: CreateFileSystemInput{Tags: []Tag{{"a", "v*"}}}, err: ErrBadRequest},
		{name: "duplicate keys", in: CreateFileSystemInput{Tags: []Tag{{"a", "1"}, {"a", "2"}}}, err: ErrBadRequest},
		{name: "too many tags", in: CreateFileSystemInput{Tags: many}, err: ErrBadRequest},
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
				if fss, _, _ := v.r.DescribeFileSystems(ctx, FileSystemQuery{CreationToken: tc.in.CreationToken}); len(fss) != 0 {
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

func wantKey(id string) func(t *testing.T, fs FileSystem) {
	return func(t *testing.T, fs FileSystem) {
		if want := "arn:aws:kms:us-east-1:" + account + ":key/" + id; fs.KMSKeyARN != want {
			t.Errorf("KMS key %q, want %q", fs.KMSKeyARN, want)
		}
	}
}

func TestEncryptionReachesTheEngine(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("enc", func(in *CreateFileSystemInput) { in.Encrypted = true; in.KMSKeyID = "alias/other" })
	plain := v.availableFS("plain")
	v.close()
	// Without the key that wraps its data key, the engine cannot open the
	// encrypted file system; the plain one does not need any key.
	k1, err := kms.Generate("1234abcd-12ab-34cd-56ef-1234567890ab", DefaultKMSKey)
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
	v := newEnv(t, func(o *Options) { o.Keyring = nil })
	_, err := v.r.CreateFileSystem(ctx, CreateFileSystemInput{CreationToken: "t", Encrypted: true})
	wantErr(t, err, ErrBadRequest)
	v.createFS("plain")
}

func TestCreationTokenIdempotency(t *testing.T) {
	v := newEnv(t)
	fs := v.createFS("tok")
	_, err := v.r.CreateFileSystem(ctx, CreateFileSystemInput{CreationToken: "tok", PerformanceMode: PerformanceMaxIO})
	wantErr(t, err, ErrFileSystemAlreadyExists)
	var e *Error
	errors.As(err, &e)
	if e.ResourceID != fs.ID {
		t.Errorf("ResourceID %q, want %q", e.ResourceID, fs.ID)
	}
	if n := len(v.e.Names()); n != 1 {
		t.Errorf("%d engine file systems", n)
	}
	// After a delete the token is free again.
	v.waitFS(fs.ID, StateAvailable)
	wantErr(t, v.r.DeleteFileSystem(ctx, fs.ID), nil)
	v.waitFSGone(fs.ID)
	fs2 := v.createFS("tok")
	if fs2.ID == fs.ID {
		t.Error("same id reused")
	}
	_, err = v.r.CreateFileSystem(ctx, CreateFileSystemInput{})
	wantErr(t, err, ErrBadRequest)
}

func TestFileSystemLimit(t *testing.T) {
	v := newEnv(t, func(o *Options) { o.MaxFileSystems = 2 })
	v.createFS("a")
	v.createFS("b")
	_, err := v.r.CreateFileSystem(ctx, CreateFileSystemInput{CreationToken: "c"})
	wantErr(t, err, ErrFileSystemLimitExceeded)
}

func TestFileSystemLifeCycle(t *testing.T) {
	v := newEnv(t, func(o *Options) { o.TransitionDelay = time.Minute })
	step := func() { v.clock.advance(time.Minute); v.r.poke() }
	fs := v.createFS("life")
	if fs.LifeCycleState != StateCreating {
		t.Fatalf("new file system is %s", fs.LifeCycleState)
	}
	if _, err := v.e.FS(fs.ID); err != nil {
		t.Fatalf("no engine file system while creating: %v", err)
	}
	step()
	fs = v.waitFS(fs.ID, StateAvailable)
	if fs.NumberOfMountTargets != 0 || fs.Size.Timestamp.IsZero() {
		t.Errorf("description: %+v", fs)
	}
	mt, err := v.r.CreateMountTarget(ctx, CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, nil)
	wantErr(t, v.r.DeleteFileSystem(ctx, fs.ID), ErrFileSystemInUse)
	wantErr(t, v.r.DeleteMountTarget(ctx, mt.ID), nil)
	wantErr(t, v.r.DeleteMountTarget(ctx, mt.ID), nil) // already deleting
	// A mount target being deleted still holds the file system.
	wantErr(t, v.r.DeleteFileSystem(ctx, fs.ID), ErrFileSystemInUse)
	step()
	v.waitMTGone(mt.ID)
	wantErr(t, v.r.DeleteFileSystem(ctx, fs.ID), nil)
	wantErr(t, v.r.DeleteFileSystem(ctx, fs.ID), nil) // already deleting
	if d, _ := v.r.DescribeFileSystem(ctx, fs.ID); d.LifeCycleState != StateDeleting {
		t.Errorf("state %s", d.LifeCycleState)
	}
	_, err = v.r.CreateMountTarget(ctx, CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, ErrIncorrectLifeCycleState)
	step()
	v.waitFSGone(fs.ID)
	if _, err := v.e.FS(fs.ID); !errors.Is(err, engine.ErrFSNotFound) {
		t.Errorf("engine file system survives its deletion: %v", err)
	}
	wantErr(t, v.r.DeleteFileSystem(ctx, fs.ID), ErrFileSystemNotFound)
	_, err = v.r.DescribeFileSystem(ctx, fs.ID)
	wantErr(t, err, ErrFileSystemNotFound)
}

func TestTransitionDelay(t *testing.T) {
	v := newEnv(t, func(o *Options) { o.TransitionDelay = time.Hour })
	fs := v.createFS("slow")
	v.r.poke()
	time.Sleep(20 * time.Millisecond)
	if got, _ := v.r.DescribeFileSystem(ctx, fs.ID); got.LifeCycleState != StateCreating {
		t.Fatalf("available before the delay: %s", got.LifeCycleState)
	}
	// A restart resumes the transition, timed from when it began.
	v.reopen()
	if got, _ := v.r.DescribeFileSystem(ctx, fs.ID); got.LifeCycleState != StateCreating {
		t.Fatalf("restart lost the transition: %s", got.LifeCycleState)
	}
	v.clock.advance(time.Hour)
	v.r.poke()
	v.waitFS(fs.ID, StateAvailable)
	wantErr(t, v.r.DeleteFileSystem(ctx, fs.ID), nil)
	v.reopen()
	if got, _ := v.r.DescribeFileSystem(ctx, fs.ID); got.LifeCycleState != StateDeleting {
		t.Fatalf("restart lost the deletion: %s", got.LifeCycleState)
	}
	if _, err := v.e.FS(fs.ID); err != nil {
		t.Fatalf("engine file system deleted before the delay: %v", err)
	}
	v.reopen(func(o *Options) { o.TransitionDelay = 0 })
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
	got := v.waitFS(fs.ID, StateAvailable)
	if got.CreationToken != "crash" {
		t.Errorf("token %q", got.CreationToken)
	}
	if _, err := v.e.FS(fs.ID); err != nil {
		t.Fatalf("Open did not create the engine file system: %v", err)
	}
	// kill -9 after acknowledged changes keeps them.
	wantErr(t, v.r.TagResource(ctx, fs.ID, []Tag{{"k", "v"}}), nil)
	v.crash()
	got = v.waitFS(fs.ID, StateAvailable)
	if !slices.Equal(got.Tags, []Tag{{"k", "v"}}) {
		t.Errorf("tags after a crash: %v", got.Tags)
	}
}

func TestUpdateFileSystem(t *testing.T) {
	v := newEnv(t, func(o *Options) { o.TransitionDelay = time.Minute })
	fs := v.createFS("upd")
	upd := func(mode *string, prov *float64) (FileSystem, error) {
		return v.r.UpdateFileSystem(ctx, UpdateFileSystemInput{FileSystemID: fs.ID, ThroughputMode: mode, ProvisionedThroughputMibps: prov})
	}
	settle := func() {
		v.clock.advance(time.Minute)
		v.r.poke()
		v.waitFS(fs.ID, StateAvailable)
	}
	_, err := upd(ptr(ThroughputElastic), nil)
	wantErr(t, err, ErrIncorrectLifeCycleState) // still creating
	settle()
	_, err = upd(ptr("turbo"), nil)
	wantErr(t, err, ErrBadRequest)
	_, err = upd(ptr(ThroughputProvisioned), nil)
	wantErr(t, err, ErrBadRequest)
	_, err = upd(nil, ptr(100.0))
	wantErr(t, err, ErrBadRequest) // bursting
	_, err = upd(ptr(ThroughputProvisioned), ptr(5000.0))
	wantErr(t, err, ErrThroughputLimitExceeded)
	got, err := upd(ptr(ThroughputProvisioned), ptr(100.0))
	wantErr(t, err, nil)
	if got.LifeCycleState != StateUpdating || got.ThroughputMode != ThroughputProvisioned || got.ProvisionedThroughputMibps != 100 {
		t.Fatalf("after update: %+v", got)
	}
	_, err = upd(nil, ptr(200.0))
	wantErr(t, err, ErrIncorrectLifeCycleState) // updating
	settle()
	got, err = upd(nil, ptr(200.0)) // increases are not restricted
	wantErr(t, err, nil)
	if got.ProvisionedThroughputMibps != 200 {
		t.Fatal(got.ProvisionedThroughputMibps)
	}
	settle()
	_, err = upd(nil, ptr(50.0))
	wantErr(t, err, ErrTooManyRequests)
	_, err = upd(ptr(ThroughputBursting), nil)
	wantErr(t, err, ErrTooManyRequests)
	got, err = upd(nil, nil)
	wantErr(t, err, nil) // nothing to change
	if got.LifeCycleState != StateAvailable {
		t.Fatal(got.LifeCycleState)
	}
	v.clock.advance(24 * time.Hour)
	got, err = upd(ptr(ThroughputElastic), nil)
	wantErr(t, err, nil)
	if got.ThroughputMode != ThroughputElastic || got.ProvisionedThroughputMibps != 0 {
		t.Fatalf("%+v", got)
	}
	settle()
	v.reopen(func(o *Options) { o.ThroughputCooldown = -1 })
	_, err = upd(ptr(ThroughputBursting), nil)
	wantErr(t, err, nil) // no cooldown configured
	_, err = v.r.UpdateFileSystem(ctx, UpdateFileSystemInput{FileSystemID: "fs-0123456789abcdef0", ThroughputMode: ptr(ThroughputElastic)})
	wantErr(t, err, ErrFileSystemNotFound)
}

func TestFileSystemProtection(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("prot")
	mt, err := v.r.CreateMountTarget(ctx, CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, nil)
	if s, _ := v.mts.spec(mt.ID); s.ReadOnly {
		t.Fatal("new mount target is read-only")
	}
	set := func(p string) (string, error) { return v.r.UpdateFileSystemProtection(ctx, fs.ID, &p) }
	got, err := set(ProtectionDisabled)
	wantErr(t, err, nil)
	if got != ProtectionDisabled {
		t.Fatal(got)
	}
	if s, _ := v.mts.spec(mt.ID); !s.ReadOnly {
		t.Error("protection DISABLED leaves the mount target writable")
	}
	if d, _ := v.r.DescribeFileSystem(ctx, fs.ID); d.Protection != ProtectionDisabled {
		t.Error(d.Protection)
	}
	if got, err := v.r.UpdateFileSystemProtection(ctx, fs.ID, nil); err != nil || got != ProtectionDisabled {
		t.Error(got, err)
	}
	_, err = set(ProtectionReplicating)
	wantErr(t, err, ErrBadRequest)
	_, err = set("enabled")
	wantErr(t, err, ErrBadRequest)
	_, err = set(ProtectionEnabled)
	wantErr(t, err, nil)
	if s, _ := v.mts.spec(mt.ID); s.ReadOnly {
		t.Error("protection ENABLED leaves the mount target read-only")
	}
	wantErr(t, v.r.SetReplicationRole(ctx, fs.ID, RoleSource), nil)
	_, err = set(ProtectionDisabled)
	wantErr(t, err, ErrReplicationAlreadyExists)
	_, err = v.r.UpdateFileSystemProtection(ctx, "fs-0123456789abcdef0", ptr(ProtectionDisabled))
	wantErr(t, err, ErrFileSystemNotFound)
	v2 := newEnv(t, func(o *Options) { o.TransitionDelay = time.Hour })
	c := v2.createFS("creating")
	_, err = v2.r.UpdateFileSystemProtection(ctx, c.ID, ptr(ProtectionDisabled))
	wantErr(t, err, ErrIncorrectLifeCycleState)
}

func TestDescribeFileSystemsPaging(t *testing.T) {
	v := newEnv(t)
	var ids []string
	for i := range 5 {
		v.clock.advance(time.Second)
		ids = append(ids, v.createFS("p"+string(rune('0'+i))).ID)
	}
	var got []string
	var pages int
	marker := ""
	for {
		fss, next, err := v.r.DescribeFileSystems(ctx, FileSystemQuery{Page: Page{Marker: marker, Max: 2}})
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
			v.waitFS(ids[2], StateAvailable)
			wantErr(t, v.r.DeleteFileSystem(ctx, ids[2]), nil)
			v.waitFSGone(ids[2])
		}
	}
	want := []string{ids[0], ids[1], ids[3], ids[4]}
	if !slices.Equal(got, want) || pages != 2 {
		t.Errorf("pages %d: %v, want %v", pages, got, want)
	}
	all, next, err := v.r.DescribeFileSystems(ctx, FileSystemQuery{})
	if err != nil || next != "" || len(all) != 4 {
		t.Errorf("unpaged: %d %q %v", len(all), next, err)
	}
	_, _, err = v.r.DescribeFileSystems(ctx, FileSystemQuery{Page: Page{Marker: "garbage!"}})
	wantErr(t, err, ErrBadRequest)
	_, _, err = v.r.DescribeFileSystems(ctx, FileSystemQuery{Page: Page{Max: -1}})
	wantErr(t, err, ErrBadRequest)
	one, _, err := v.r.DescribeFileSystems(ctx, FileSystemQuery{CreationToken: "p3"})
	if err != nil || len(one) != 1 || one[0].ID != ids[3] {
		t.Errorf("by token: %v %v", one, err)
	}
	none, _, err := v.r.DescribeFileSystems(ctx, FileSystemQuery{CreationToken: "nope"})
	if err != nil || len(none) != 0 {
		t.Errorf("unknown token: %v %v", none, err)
	}
	_, _, err = v.r.DescribeFileSystems(ctx, FileSystemQuery{FileSystemID: ids[3], CreationToken: "p1"})
	wantErr(t, err, ErrFileSystemNotFound)
	_, _, err = v.r.DescribeFileSystems(ctx, FileSystemQuery{FileSystemID: "fs-0123456789abcdef0"})
	wantErr(t, err, ErrFileSystemNotFound)
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
		{"arn:aws:elasticfilesystem:us-west-2:" + account + ":file-system/" + fs.ID, ErrFileSystemNotFound},
		{"arn:aws:elasticfilesystem:us-east-1:210987654321:file-system/" + fs.ID, ErrFileSystemNotFound},
		{"arn:aws-cn:elasticfilesystem:us-east-1:" + account + ":file-system/" + fs.ID, ErrFileSystemNotFound},
		{"arn:aws:elasticfilesystem:us-east-1:" + account + ":access-point/" + fs.ID, ErrBadRequest},
		{"arn:aws:s3:us-east-1:" + account + ":file-system/" + fs.ID, ErrBadRequest},
		{"fs-12", ErrBadRequest},
		{"FS-0123456789ABCDEF0", ErrBadRequest},
		{"fs-01234567", ErrFileSystemNotFound},
	} {
		_, err := v.r.DescribeFileSystem(ctx, tc.ref)
		if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.ref, err, tc.err)
		}
	}
}

func TestAccountPreferences(t *testing.T) {
	v := newEnv(t)
	if p := v.r.DescribeAccountPreferences(ctx); p.ResourceIDType != LongID || !slices.Equal(p.Resources, []string{"FILE_SYSTEM", "MOUNT_TARGET"}) {
		t.Fatalf("default: %+v", p)
	}
	_, err := v.r.PutAccountPreferences(ctx, "MEDIUM_ID")
	wantErr(t, err, ErrBadRequest)
	p, err := v.r.PutAccountPreferences(ctx, ShortID)
	wantErr(t, err, nil)
	if p.ResourceIDType != ShortID {
		t.Fatal(p)
	}
	v.reopen()
	if p := v.r.DescribeAccountPreferences(ctx); p.ResourceIDType != ShortID {
		t.Fatalf("after restart: %+v", p)
	}
	fs := v.availableFS("short")
	if !regexp.MustCompile(`^fs-[0-9a-f]{8}$`).MatchString(fs.ID) {
		t.Errorf("short id %q", fs.ID)
	}
	mt, err := v.r.CreateMountTarget(ctx, CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, nil)
	if !regexp.MustCompile(`^fsmt-[0-9a-f]{8}$`).MatchString(mt.ID) {
		t.Errorf("short mount target id %q", mt.ID)
	}
}

func TestClosedRegion(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("c")
	v.r.Close()
	_, err := v.r.CreateFileSystem(ctx, CreateFileSystemInput{CreationToken: "x"})
	if !errors.Is(err, ErrClosed) {
		t.Errorf("create after close: %v", err)
	}
	if err := v.r.DeleteFileSystem(ctx, fs.ID); !errors.Is(err, ErrClosed) {
		t.Errorf("delete after close: %v", err)
	}
	wantErr(t, v.r.Close(), nil)
}

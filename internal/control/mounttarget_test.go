package control_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/testkit"
)

func TestCreateMountTarget(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("mt")
	mt, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, nil)
	want := control.MountTarget{
		ID: mt.ID, FileSystemID: fs.ID, OwnerID: account, SubnetID: subA, LifeCycleState: control.StateCreating,
		IPAddress: "10.0.1.4", NetworkInterfaceID: mt.NetworkInterfaceID, AvailabilityZoneName: "us-east-1a",
		AvailabilityZoneID: "use1-az1", VPCID: "vpc-1", SecurityGroups: []string{sgDef},
	}
	if d := cmp.Diff(want, mt); d != "" {
		t.Fatalf("mount target (-want +got):\n%s", d)
	}
	if !control.MountTargetIDPattern.MatchString(mt.ID) || len(mt.NetworkInterfaceID) != 21 {
		t.Errorf("ids %q %q", mt.ID, mt.NetworkInterfaceID)
	}
	spec, ok := v.mts.Spec(mt.ID)
	if !ok {
		t.Fatal("mount target not served")
	}
	efs, _ := v.e.FS(fs.ID)
	wantSpec := control.MountTargetSpec{ID: mt.ID, FileSystemID: fs.ID, Addr: netip.MustParseAddrPort("10.0.1.4:2049"), FS: efs,
		Ingress: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}}
	if spec.Addr != wantSpec.Addr || spec.FS != efs || !slices.Equal(spec.Ingress, wantSpec.Ingress) || spec.ReadOnly || len(spec.AccessPoints) != 0 {
		t.Errorf("spec %+v", spec)
	}
	v.waitMT(mt.ID, control.StateAvailable)
	if d, _ := v.r.DescribeFileSystem(ctx, fs.ID); d.NumberOfMountTargets != 1 {
		t.Errorf("NumberOfMountTargets %d", d.NumberOfMountTargets)
	}
	// Two security groups: the union of their ingress.
	mt2, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB, IPAddress: "10.0.2.200", SecurityGroups: []string{sgB, sgDef, sgB}})
	wantErr(t, err, nil)
	if mt2.IPAddress != "10.0.2.200" || !slices.Equal(mt2.SecurityGroups, []string{sgB, sgDef}) {
		t.Errorf("second: %+v", mt2)
	}
	spec, _ = v.mts.Spec(mt2.ID)
	if !slices.Equal(spec.Ingress, []netip.Prefix{netip.MustParsePrefix("192.168.0.0/24"), netip.MustParsePrefix("10.0.0.0/16")}) {
		t.Errorf("ingress %v", spec.Ingress)
	}
	if d, _ := v.r.DescribeFileSystem(ctx, fs.ID); d.NumberOfMountTargets != 2 {
		t.Errorf("NumberOfMountTargets %d", d.NumberOfMountTargets)
	}
}

func TestCreateMountTargetRules(t *testing.T) {
	v := newEnv(t, func(o *control.Options) { o.MaxNetworkInterfaces = 8 })
	fs := v.availableFS("rules")
	other := v.availableFS("other")
	oneZone := v.availableFS("onezone", func(in *control.CreateFileSystemInput) { in.AvailabilityZoneName = "us-east-1b" })
	if _, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: other.ID, SubnetID: subB, IPAddress: "10.0.2.9"}); err != nil {
		t.Fatal(err)
	}
	creating := newEnvFS(t, v)
	tests := []struct {
		name string
		in   control.CreateMountTargetInput
		err  error
	}{
		{"same zone", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subTiny}, control.ErrMountTargetConflict},
		{"same subnet", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA}, control.ErrMountTargetConflict},
		{"other VPC", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subVPC2, SecurityGroups: []string{sgVPC2}}, control.ErrMountTargetConflict},
		{"unknown subnet", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: "subnet-0123456789abcdef0"}, control.ErrSubnetNotFound},
		{"unknown file system", control.CreateMountTargetInput{FileSystemID: "fs-0123456789abcdef0", SubnetID: subB}, control.ErrFileSystemNotFound},
		{"bad file system id", control.CreateMountTargetInput{FileSystemID: "fs-xyz", SubnetID: subB}, control.ErrBadRequest},
		{"not available", control.CreateMountTargetInput{FileSystemID: creating, SubnetID: subB}, control.ErrIncorrectLifeCycleState},
		{"address in use", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB, IPAddress: "10.0.2.9"}, control.ErrIPAddressInUse},
		{"address outside", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB, IPAddress: "10.0.1.9"}, control.ErrBadRequest},
		{"reserved address", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB, IPAddress: "10.0.2.3"}, control.ErrBadRequest},
		{"broadcast address", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB, IPAddress: "10.0.2.255"}, control.ErrBadRequest},
		{"not an address", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB, IPAddress: "10.0.2"}, control.ErrBadRequest},
		{"IPv6 address", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB, IPv6Address: "fd00::4"}, control.ErrBadRequest},
		{"IPv6 only", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB, IPAddressType: "IPV6_ONLY"}, control.ErrBadRequest},
		{"dual stack", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB, IPAddressType: "DUAL_STACK"}, control.ErrBadRequest},
		{"bad address type", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB, IPAddressType: "IPV5"}, control.ErrBadRequest},
		{"unknown group", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB, SecurityGroups: []string{"sg-0123456789abcdef0"}}, control.ErrSecurityGroupNotFound},
		{"group of another VPC", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB, SecurityGroups: []string{sgVPC2}}, control.ErrSecurityGroupNotFound},
		{"six groups", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB, SecurityGroups: []string{sgDef, "sg-0000000000000001", "sg-0000000000000002", "sg-0000000000000003", "sg-0000000000000004", "sg-0000000000000005"}}, control.ErrSecurityGroupLimitExceeded},
		{"one zone elsewhere", control.CreateMountTargetInput{FileSystemID: oneZone.ID, SubnetID: subA}, control.ErrAvailabilityZonesMismatch},
		{"one zone in its zone", control.CreateMountTargetInput{FileSystemID: oneZone.ID, SubnetID: subB, SecurityGroups: []string{"sg-0000000000000001", "sg-0000000000000002", "sg-0000000000000003", "sg-0000000000000004", "sg-0000000000000005"}}, nil},
		{"explicit address", control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB, IPAddress: "10.0.2.254", IPAddressType: "IPV4_ONLY"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := v.r.UsedAddresses(tc.in.SubnetID)
			served := v.mts.Serving()
			_, err := v.r.CreateMountTarget(ctx, tc.in)
			wantErr(t, err, tc.err)
			if tc.err != nil && (v.r.UsedAddresses(tc.in.SubnetID) != before || v.mts.Serving() != served) {
				t.Error("a refused mount target holds an address or is served")
			}
		})
	}
}

// newEnvFS creates a file system that stays creating and returns its id.
func newEnvFS(t *testing.T, v *env) string {
	t.Helper()
	fs, err := v.r.CreateFileSystemForTest(ctx, control.CreateFileSystemInput{CreationToken: "stays-creating"})
	if err != nil {
		t.Fatal(err)
	}
	return fs.ID
}

func TestMountTargetAddresses(t *testing.T) {
	v := newEnv(t, func(o *control.Options) { o.MaxNetworkInterfaces = 4 })
	var fss []control.FileSystem
	for i := range 5 {
		fss = append(fss, v.availableFS(fmt.Sprint("addr", i)))
	}
	var ips []string
	var mts []control.MountTarget
	for i := range 3 {
		mt, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fss[i].ID, SubnetID: subTiny})
		wantErr(t, err, nil)
		ips = append(ips, mt.IPAddress)
		mts = append(mts, mt)
	}
	if !slices.Equal(ips, []string{"10.0.3.4", "10.0.3.5", "10.0.3.6"}) {
		t.Errorf("addresses %v", ips)
	}
	if n := v.r.UsedAddresses(subTiny); n != 3 {
		t.Errorf("UsedAddresses %d", n)
	}
	_, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fss[3].ID, SubnetID: subTiny})
	wantErr(t, err, control.ErrNoFreeAddresses)
	// A deleted mount target frees its address (once it is gone).
	wantErr(t, v.r.DeleteMountTarget(ctx, mts[1].ID), nil)
	v.waitMTGone(mts[1].ID)
	mt, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fss[3].ID, SubnetID: subTiny})
	wantErr(t, err, nil)
	if mt.IPAddress != "10.0.3.5" {
		t.Errorf("reused address %s", mt.IPAddress)
	}
	_, err = v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fss[4].ID, SubnetID: subA})
	wantErr(t, err, nil)
	_, err = v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fss[4].ID, SubnetID: subB})
	wantErr(t, err, control.ErrNetworkInterfaceLimitExceeded)
}

func TestMountTargetServerErrors(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("srv")
	v.mts.FailNext(errors.New("listen: cannot assign requested address"))
	_, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	if err == nil || errors.Is(err, control.ErrBadRequest) {
		t.Fatalf("a failed start: %v", err)
	}
	v.mts.FailNext(fmt.Errorf("subnet listener taken: %w", control.ErrNoFreeAddresses))
	_, err = v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, control.ErrNoFreeAddresses)
	v.mts.FailNext(fmt.Errorf("address taken: %w", control.ErrIPAddressInUse))
	_, err = v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, control.ErrIPAddressInUse)
	if n := v.r.UsedAddresses(subA); n != 0 {
		t.Errorf("failed starts left %d mount targets", n)
	}
	mt, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, nil)
	if mt.IPAddress != "10.0.1.4" {
		t.Error(mt.IPAddress)
	}
}

func TestDescribeAndDeleteMountTargets(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("d")
	a, _ := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	v.clock.Advance(1)
	b, _ := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB})
	ap, err := v.r.CreateAccessPoint(ctx, control.CreateAccessPointInput{ClientToken: "ap", FileSystemID: fs.ID})
	wantErr(t, err, nil)
	for _, q := range []control.MountTargetQuery{{FileSystemID: fs.ID}, {FileSystemID: fs.ARN}, {AccessPointID: ap.ID}, {AccessPointID: ap.ARN}} {
		got, next, err := v.r.DescribeMountTargets(ctx, q)
		if err != nil || next != "" || len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
			t.Errorf("%+v: %v %q %v", q, got, next, err)
		}
	}
	p1, next, err := v.r.DescribeMountTargets(ctx, control.MountTargetQuery{FileSystemID: fs.ID, Page: control.Page{Max: 1}})
	if err != nil || len(p1) != 1 || p1[0].ID != a.ID || next == "" {
		t.Fatalf("page 1: %v %q %v", p1, next, err)
	}
	p2, next2, err := v.r.DescribeMountTargets(ctx, control.MountTargetQuery{FileSystemID: fs.ID, Page: control.Page{Max: 1, Marker: next}})
	if err != nil || len(p2) != 1 || p2[0].ID != b.ID || next2 != "" {
		t.Fatalf("page 2: %v %q %v", p2, next2, err)
	}
	for _, tc := range []struct {
		q   control.MountTargetQuery
		err error
	}{
		{control.MountTargetQuery{}, control.ErrBadRequest},
		{control.MountTargetQuery{FileSystemID: fs.ID, MountTargetID: a.ID}, control.ErrBadRequest},
		{control.MountTargetQuery{MountTargetID: "fsmt-0123456789abcdef0"}, control.ErrMountTargetNotFound},
		{control.MountTargetQuery{MountTargetID: "mt-1"}, control.ErrBadRequest},
		{control.MountTargetQuery{FileSystemID: "fs-0123456789abcdef0"}, control.ErrFileSystemNotFound},
		{control.MountTargetQuery{AccessPointID: "fsap-0123456789abcdef0"}, control.ErrAccessPointNotFound},
		{control.MountTargetQuery{FileSystemID: fs.ID, Page: control.Page{Marker: "x"}}, control.ErrBadRequest},
	} {
		_, _, err := v.r.DescribeMountTargets(ctx, tc.q)
		if !errors.Is(err, tc.err) {
			t.Errorf("%+v: %v, want %v", tc.q, err, tc.err)
		}
	}
	wantErr(t, v.r.DeleteMountTarget(ctx, a.ID), nil)
	if _, ok := v.mts.Spec(a.ID); ok {
		t.Error("deleted mount target still served")
	}
	if err := v.r.DeleteMountTarget(ctx, a.ID); err != nil && !errors.Is(err, control.ErrMountTargetNotFound) {
		t.Errorf("delete while deleting: %v", err)
	}
	v.waitMTGone(a.ID)
	wantErr(t, v.r.DeleteMountTarget(ctx, a.ID), control.ErrMountTargetNotFound)
	wantErr(t, v.r.DeleteMountTarget(ctx, "nope"), control.ErrBadRequest)
	if d, _ := v.r.DescribeFileSystem(ctx, fs.ID); d.NumberOfMountTargets != 1 {
		t.Errorf("NumberOfMountTargets %d", d.NumberOfMountTargets)
	}
}

func TestMountTargetSecurityGroups(t *testing.T) {
	v := newEnv(t, func(o *control.Options) { o.TransitionDelay = 1 << 40 })
	fs := v.createFS("sg")
	v.clock.Advance(1 << 40)
	v.r.PokeForTest()
	v.waitFS(fs.ID, control.StateAvailable)
	mt, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	wantErr(t, err, nil)
	sgs, err := v.r.DescribeMountTargetSecurityGroups(ctx, mt.ID)
	if err != nil || !slices.Equal(sgs, []string{sgDef}) {
		t.Fatal(sgs, err)
	}
	wantErr(t, v.r.ModifyMountTargetSecurityGroups(ctx, mt.ID, []string{sgB}), control.ErrIncorrectMountTargetState) // creating
	v.clock.Advance(1 << 40)
	v.r.PokeForTest()
	v.waitMT(mt.ID, control.StateAvailable)
	wantErr(t, v.r.ModifyMountTargetSecurityGroups(ctx, mt.ID, nil), control.ErrBadRequest)
	wantErr(t, v.r.ModifyMountTargetSecurityGroups(ctx, mt.ID, []string{"sg-0123456789abcdef0"}), control.ErrSecurityGroupNotFound)
	wantErr(t, v.r.ModifyMountTargetSecurityGroups(ctx, mt.ID, []string{sgVPC2}), control.ErrSecurityGroupNotFound)
	wantErr(t, v.r.ModifyMountTargetSecurityGroups(ctx, mt.ID, []string{sgDef, sgB, "sg-0000000000000001", "sg-0000000000000002", "sg-0000000000000003", "sg-0000000000000004"}), control.ErrSecurityGroupLimitExceeded)
	wantErr(t, v.r.ModifyMountTargetSecurityGroups(ctx, "fsmt-0123456789abcdef0", []string{sgB}), control.ErrMountTargetNotFound)
	wantErr(t, v.r.ModifyMountTargetSecurityGroups(ctx, mt.ID, []string{"sg-0000000000000001"}), nil)
	if s, _ := v.mts.Spec(mt.ID); len(s.Ingress) != 0 {
		t.Errorf("ingress of a group without rules: %v", s.Ingress)
	}
	wantErr(t, v.r.ModifyMountTargetSecurityGroups(ctx, mt.ID, []string{sgB}), nil)
	if s, _ := v.mts.Spec(mt.ID); len(s.Ingress) != 2 {
		t.Errorf("ingress after modify: %v", s.Ingress)
	}
	sgs, _ = v.r.DescribeMountTargetSecurityGroups(ctx, mt.ID)
	if !slices.Equal(sgs, []string{sgB}) {
		t.Error(sgs)
	}
	wantErr(t, v.r.DeleteMountTarget(ctx, mt.ID), nil)
	_, err = v.r.DescribeMountTargetSecurityGroups(ctx, mt.ID)
	wantErr(t, err, control.ErrIncorrectMountTargetState)
	wantErr(t, v.r.ModifyMountTargetSecurityGroups(ctx, mt.ID, []string{sgB}), control.ErrIncorrectMountTargetState)
	_, err = v.r.DescribeMountTargetSecurityGroups(ctx, "fsmt-0123456789abcdef0")
	wantErr(t, err, control.ErrMountTargetNotFound)
}

func TestMountTargetsAfterRestart(t *testing.T) {
	v := newEnv(t)
	fs := v.availableFS("restart")
	a, _ := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA})
	b, _ := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subB})
	v.waitMT(b.ID, control.StateAvailable)
	v.reopen(func(o *control.Options) { o.TransitionDelay = 1 << 50 })
	wantErr(t, v.r.DeleteMountTarget(ctx, b.ID), nil)
	v.reopen()
	sa, okA := v.mts.Spec(a.ID)
	_, okB := v.mts.Spec(b.ID)
	if !okA || okB || sa.Addr != netip.MustParseAddrPort("10.0.1.4:2049") {
		t.Errorf("after restart: a served %v (%v), b (deleting) served %v", okA, sa.Addr, okB)
	}
	if m, err := v.mt(b.ID); err != nil || m.LifeCycleState != control.StateDeleting {
		t.Errorf("deleting mount target after restart: %+v %v", m, err)
	}
	v.reopen(func(o *control.Options) { o.TransitionDelay = 0 })
	v.waitMTGone(b.ID)
	v.crash()
	if _, ok := v.mts.Spec(a.ID); !ok {
		t.Error("mount target not served after a crash")
	}
}

// Regression: a deleted mount target's address stays taken until its
// server has stopped, so a new mount target never binds it too early.
func TestMountTargetAddressHeldUntilStopped(t *testing.T) {
	synctest.Test(t, testMountTargetAddressHeldUntilStopped)
}

func testMountTargetAddressHeldUntilStopped(t *testing.T) {
	v := newEnv(t)
	a, b := v.availableFS("a"), v.availableFS("b")
	mt, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: a.ID, SubnetID: subA})
	wantErr(t, err, nil)
	release := v.mts.HoldStops()
	done := make(chan error)
	go func() { done <- v.r.DeleteMountTarget(ctx, mt.ID) }()
	if !testkit.Until(10*time.Second, func() bool { m, err := v.mt(mt.ID); return err == nil && m.LifeCycleState == control.StateDeleting }) {
		t.Fatal("mount target never deleting")
	}
	v.r.PokeForTest()
	synctest.Wait() // the worker had its chance to remove it
	if _, err := v.mt(mt.ID); err != nil {
		t.Fatalf("removed while its server was still stopping: %v", err)
	}
	other, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: b.ID, SubnetID: subA})
	wantErr(t, err, nil)
	if other.IPAddress == mt.IPAddress {
		t.Fatalf("address %s handed out while its server was stopping", other.IPAddress)
	}
	release()
	wantErr(t, <-done, nil)
	v.waitMTGone(mt.ID)
}

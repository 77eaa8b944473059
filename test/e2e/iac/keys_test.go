package iace2e

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/testkit"
)

// TestCustomerKeyEncryptsReplica: a key made with `aws kms create-key` and
// `create-alias` in the destination region encrypts a replication
// destination given as alias/…; disabling it stops reads of the replica
// with an I/O error (not garbage) and new file systems are refused
// (BadRequest naming the key); enabling it brings the same data back and replication catches
// up; a key scheduled for deletion behaves the same, and a canceled
// deletion restores the file system.
func TestCustomerKeyEncryptsReplica(t *testing.T) {
	east, west := startPair(t)

	key := west.must("kms", "create-key", "--description", "DR replica key", "--query", "KeyMetadata.KeyId")
	keyARN := "arn:aws:kms:us-west-2:123456789012:key/" + key
	west.must("kms", "create-alias", "--alias-name", "alias/dr-replica", "--target-key-id", key)

	src := east.must("efs", "create-file-system", "--creation-token", "keys", "--encrypted", "--query", "FileSystemId")
	testkit.WaitFor(t, "source available", 30*time.Second, func() bool {
		out, _ := east.run("efs", "describe-file-systems", "--file-system-id", src, "--query", "FileSystems[0].LifeCycleState")
		return out == "available"
	})
	srcIP := east.mountTarget(src)
	first := bytes.Repeat([]byte("replicated under a customer key\n"), 4096)
	if err := nfsPut(t, srcIP, "first.txt", first); err != nil {
		t.Fatal(err)
	}
	east.must("efs", "create-replication-configuration", "--source-file-system-id", src,
		"--destinations", `[{"Region":"us-west-2","KmsKeyId":"alias/dr-replica"}]`)
	var dst string
	testkit.WaitFor(t, "replication ENABLED", 60*time.Second, func() bool {
		out, _ := east.run("efs", "describe-replication-configurations", "--file-system-id", src, "--query", "Replications[0].Destinations[0].[Status,FileSystemId]")
		f := strings.Fields(out)
		if len(f) == 2 && f[0] == "ENABLED" {
			dst = f[1]
			return true
		}
		return false
	})
	if got := west.must("efs", "describe-file-systems", "--file-system-id", dst, "--query", "FileSystems[0].[Encrypted,KmsKeyId]"); got != "True\t"+keyARN {
		t.Fatalf("destination file system: %q, want encrypted under %s", got, keyARN)
	}
	dstIP := west.mountTarget(dst)
	testkit.WaitFor(t, "the file replicated", 30*time.Second, func() bool {
		got, err := nfsCat(t, dstIP, "first.txt")
		return err == nil && bytes.Equal(got, first)
	})

	// Disabled: the replica's data is not readable, with an error; nothing
	// new is encrypted under the key.
	// DisableKey takes a key id or ARN only, as on AWS.
	west.fails("NotFoundException", "kms", "disable-key", "--key-id", "alias/dr-replica")
	west.must("kms", "disable-key", "--key-id", key)
	if got := west.must("kms", "describe-key", "--key-id", "alias/dr-replica", "--query", "KeyMetadata.KeyState"); got != "Disabled" {
		t.Fatalf("key state %q", got)
	}
	if got, err := nfsCat(t, dstIP, "first.txt"); err == nil {
		t.Fatalf("read of a replica whose key is disabled succeeded (%d bytes)", len(got))
	} else {
		t.Logf("read with the key disabled: %v", err)
	}
	// EFS answers BadRequest (its model has no KMS errors), naming the key.
	if out := west.fails("BadRequest", "efs", "create-file-system", "--creation-token", "new", "--encrypted", "--kms-key-id", "alias/dr-replica"); !strings.Contains(out, "disabled") {
		t.Fatalf("create-file-system with a disabled key: %s", out)
	}
	west.fails("DisabledException", "kms", "rotate-key-on-demand", "--key-id", key)
	// The source keeps working; what it writes now reaches the replica
	// once the key is back.
	second := []byte("written while the replica's key was disabled\n")
	if err := nfsPut(t, srcIP, "second.txt", second); err != nil {
		t.Fatal(err)
	}
	if out := west.must("efs", "describe-file-systems", "--file-system-id", dst, "--query", "FileSystems[0].FileSystemId"); out != dst {
		t.Fatalf("describe-file-systems of a locked file system: %q", out)
	}

	west.must("kms", "enable-key", "--key-id", key)
	testkit.WaitFor(t, "replica readable again with the key enabled", 30*time.Second, func() bool {
		got, err := nfsCat(t, dstIP, "first.txt")
		return err == nil && bytes.Equal(got, first)
	})
	testkit.WaitFor(t, "replication caught up after the key came back", 60*time.Second, func() bool {
		got, err := nfsCat(t, dstIP, "second.txt")
		return err == nil && bytes.Equal(got, second)
	})

	// Rotation re-wraps the replica's data key; data stays readable, also
	// after a restart.
	west.must("kms", "rotate-key-on-demand", "--key-id", key)
	west.Kill9()
	west.start()
	testkit.WaitFor(t, "replica readable after rotation and restart", 30*time.Second, func() bool {
		got, err := nfsCat(t, dstIP, "first.txt")
		return err == nil && bytes.Equal(got, first)
	})

	// Pending deletion: the key cannot be used, the replica is locked;
	// canceling the deletion leaves the key disabled, as on AWS.
	if got := west.must("kms", "schedule-key-deletion", "--key-id", key, "--pending-window-in-days", "7", "--query", "KeyState"); got != "PendingDeletion" {
		t.Fatalf("schedule-key-deletion: %q", got)
	}
	if _, err := nfsCat(t, dstIP, "first.txt"); err == nil {
		t.Fatal("read of a replica whose key is pending deletion succeeded")
	}
	if out := west.fails("BadRequest", "efs", "create-file-system", "--creation-token", "new2", "--encrypted", "--kms-key-id", key); !strings.Contains(out, "pending deletion") {
		t.Fatalf("create-file-system with a key pending deletion: %s", out)
	}
	west.must("kms", "cancel-key-deletion", "--key-id", key)
	if got := west.must("kms", "describe-key", "--key-id", key, "--query", "KeyMetadata.KeyState"); got != "Disabled" {
		t.Fatalf("key state after cancel-key-deletion: %q", got)
	}
	west.must("kms", "enable-key", "--key-id", key)
	testkit.WaitFor(t, "replica readable after the deletion was canceled", 30*time.Second, func() bool {
		got, err := nfsCat(t, dstIP, "first.txt")
		return err == nil && bytes.Equal(got, first)
	})

	// At the source: a file system whose key is disabled is refused with
	// a BadRequest that says so (not an internal error), also after a
	// restart with the key still disabled.
	k2 := east.must("kms", "create-key", "--query", "KeyMetadata.KeyId")
	fs2 := east.must("efs", "create-file-system", "--creation-token", "locked", "--encrypted", "--kms-key-id", k2, "--query", "FileSystemId")
	testkit.WaitFor(t, "second file system available", 30*time.Second, func() bool {
		out, _ := east.run("efs", "describe-file-systems", "--file-system-id", fs2, "--query", "FileSystems[0].LifeCycleState")
		return out == "available"
	})
	east.must("kms", "disable-key", "--key-id", k2)
	const locked = "KMS key is disabled, pending deletion or deleted"
	if out := east.fails("BadRequest", "efs", "create-replication-configuration", "--source-file-system-id", fs2, "--destinations", `[{"Region":"us-west-2"}]`); !strings.Contains(out, locked) {
		t.Fatalf("create-replication-configuration of a file system whose key is disabled: %s", out)
	}
	east.Kill9()
	east.start()
	if out := east.fails("BadRequest", "efs", "create-replication-configuration", "--source-file-system-id", fs2, "--destinations", `[{"Region":"us-west-2"}]`); !strings.Contains(out, locked) {
		t.Fatalf("create-replication-configuration after a restart with the key disabled: %s", out)
	}
	// Its deletion is accepted but waits for the key (releasing its
	// blocks needs its block maps, sealed under the key): it stays
	// "deleting" until the key is enabled, then it is gone.
	east.must("efs", "delete-file-system", "--file-system-id", fs2)
	time.Sleep(2 * time.Second) // time for a deletion that did not wait for the key
	if got := east.must("efs", "describe-file-systems", "--file-system-id", fs2, "--query", "FileSystems[0].LifeCycleState"); got != "deleting" {
		t.Fatalf("file system with a disabled key after delete-file-system: %q", got)
	}
	east.must("kms", "enable-key", "--key-id", k2)
	testkit.WaitFor(t, "file system deleted once its key is enabled", 30*time.Second, func() bool {
		out, err := east.run("efs", "describe-file-systems", "--file-system-id", fs2)
		return err != nil && strings.Contains(out, "(FileSystemNotFound)")
	})
}

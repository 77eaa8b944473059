package testkit

import (
	"strings"
	"testing"
)

func TestPairedRegionConfig(t *testing.T) {
	r := PairedRegion{Name: "us-east-1", Dir: "/d", Net: "127.61", ID: "a", Peer: "us-west-2",
		PeerReplication: "127.62.0.1:7443", PeerAPI: "127.62.0.1:7070", AccessKey: "AK", SecretKey: "SK", PairKey: "PK",
		Extra: "sns: {smtp: {address: \"127.0.0.1:25\"}}\n"}
	want := `
region: us-east-1
account_id: "123456789012"
data_dir: /d/data
api: {listen: "127.61.0.1:7070"}
nfs: {port: 12049}
credentials: [{access_key_id: AK, secret_access_key: SK}]
subnets:
  - {id: subnet-0e2e0000000000a1, availability_zone: us-east-1a, cidr: 127.61.1.0/24}
security_groups:
  - {id: sg-0e2e0000000000000a1, name: default, ingress: [127.0.0.0/8]}
kms_keys: [{id: 0e2e0e2e-0e2e-4e2e-8e2e-0e2e0e2e0ea1, aliases: [alias/aws/elasticfilesystem], key_file: /d/kms.key}]
replication: {listen: "127.61.0.1:7443"}
peers: [{name: us-west-2, replication: "127.62.0.1:7443", api: "127.62.0.1:7070", secret: PK}]
replicate: {heartbeat: 100ms}
control: {transition_delay: 0s}
sns: {smtp: {address: "127.0.0.1:25"}}
log: {level: info}
`
	if got := r.Config(); got != want {
		t.Errorf("Config():\n%s\nwant:\n%s", got, want)
	}
	r.PeerAPI, r.Extra = "", ""
	want = `peers: [{name: us-west-2, replication: "127.62.0.1:7443", secret: PK}]`
	if got := r.Config(); !strings.Contains(got, want+"\nreplicate") || !strings.Contains(got, "transition_delay: 0s}\nlog:") {
		t.Errorf("Config() without PeerAPI and Extra:\n%s\nwant the line %s", got, want)
	}
}

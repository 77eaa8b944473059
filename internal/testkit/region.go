package testkit

import "fmt"

// PairedRegion is one region of a two-region end-to-end test: a
// `regionfs serve` whose API and replication listen on Net.0.1 and which
// replicates with one peer.
type PairedRegion struct {
	Name string // the region, e.g. us-east-1
	Dir  string // data_dir is Dir/data; the KMS key is read from Dir/kms.key
	Net  string // the region's loopback prefix, e.g. "127.61"
	ID   string // one character that makes its subnet, security group and KMS key ids unique

	Peer            string // the peer region's name
	PeerReplication string // the peer's replication address
	PeerAPI         string // the peer's API address; "" leaves it out of the peer

	AccessKey, SecretKey string // the region's one credential
	PairKey              string // the secret the pair shares

	Extra string // more YAML lines (each ending in a newline), before log
}

// Config is the region's config file: subnet, security group and KMS key
// of its own, the peer, a 100 ms heartbeat and no control transition delay.
func (r PairedRegion) Config() string {
	peerAPI := ""
	if r.PeerAPI != "" {
		peerAPI = fmt.Sprintf(" api: %q,", r.PeerAPI)
	}
	return fmt.Sprintf(`
region: %[1]s
account_id: "123456789012"
data_dir: %[2]s/data
api: {listen: "%[3]s.0.1:7070"}
nfs: {port: 12049}
credentials: [{access_key_id: %[7]s, secret_access_key: %[8]s}]
subnets:
  - {id: subnet-0e2e0000000000%[4]s1, availability_zone: %[1]sa, cidr: %[3]s.1.0/24}
security_groups:
  - {id: sg-0e2e0000000000000%[4]s1, name: default, ingress: [127.0.0.0/8]}
kms_keys: [{id: 0e2e0e2e-0e2e-4e2e-8e2e-0e2e0e2e0e%[4]s1, aliases: [alias/aws/elasticfilesystem], key_file: %[2]s/kms.key}]
replication: {listen: "%[3]s.0.1:7443"}
peers: [{name: %[5]s, replication: %[6]q,%[9]s secret: %[10]s}]
replicate: {heartbeat: 100ms}
control: {transition_delay: 0s}
%[11]slog: {level: info}
`, r.Name, r.Dir, r.Net, r.ID, r.Peer, r.PeerReplication, r.AccessKey, r.SecretKey, peerAPI, r.PairKey, r.Extra)
}

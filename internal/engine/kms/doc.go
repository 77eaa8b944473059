// Package kms is the local keyring that stands in for a key management
// service in this self-hosted world: key-encryption keys, each with an id
// and aliases (such as alias/aws/elasticfilesystem), that wrap and unwrap
// file-system data keys. The keyring file is JSON:
//
//	{"version":1,"keys":[{"id":"…","aliases":["alias/…"],"material":"<base64, 32 bytes>","created":"RFC 3339"}]}
//
// A wrapped key is: version 1 ‖ 12-byte nonce ‖ AES-256-GCM(material,
// data key) with "regionfs dek v1" ‖ key id as additional data.
package kms

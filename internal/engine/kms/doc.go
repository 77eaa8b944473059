// Package kms is the local keyring that stands in for a key management
// service in this self-hosted world: key-encryption keys, each with an id,
// aliases (such as alias/aws/elasticfilesystem), a state (enabled,
// disabled, pending deletion) and backing keys (the first one and one per
// rotation), that wrap and unwrap file-system data keys. Keys from the
// configuration are static (AWS managed); keys made through the KMS API
// live in the file the keyring is attached to, rewritten durably (temp
// file, fsync, rename, fsync of the directory) on every change:
//
//	{"version":1,"keys":[{"id":"…","aliases":["alias/…"],"material":"<base64, 32 bytes>","created":"RFC 3339",
//	  "rotations":[{"v":1,"material":"…","created":"…"}],"state":"Disabled","meta":{…}}]}
//
// A wrapped key is either version 1 ‖ 12-byte nonce ‖ AES-256-GCM(first
// backing key, data key) with "regionfs dek v1" ‖ key id as additional
// data, or version 2 ‖ backing key version (4 bytes, big endian) ‖ nonce ‖
// AES-256-GCM(that backing key, data key) with "regionfs dek v2" ‖ key id
// ‖ 0 ‖ version as additional data. A disabled key or one pending deletion
// neither wraps nor unwraps; a deleted key's material is gone.
package kms

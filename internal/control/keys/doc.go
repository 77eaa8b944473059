// Package keys is the KMS domain of a region: customer managed keys made
// through the KMS API (CreateKey, aliases, enable/disable, scheduled
// deletion 7–30 days, automatic and on-demand rotation, tags, key
// policies), the region's configured keys shown as AWS managed keys, and
// the effect of every state change on the file systems the key encrypts.
//
// Key material, states, backing keys and this package's metadata (JSON in
// kms.Key.Meta: description, usage, policy, tags, rotation schedule,
// deletion date, creation token) live in the region's keyring file
// (package engine/kms). After each change of a key's state or material the
// engine applies it (Engine.KeysChanged: lock, unlock, re-wrap) and the
// control plane serves the mount targets of file systems that became
// usable again.
//
// A background loop destroys keys whose deletion date has passed and
// rotates keys whose rotation is due.
//
// Errors are *Error values wrapping one sentinel (ErrNotFound,
// ErrInvalidState, ErrDisabled, ErrAlreadyExists, ErrValidation, …) with
// KMS's public message.
package keys

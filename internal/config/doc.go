// Package config is the configuration tree of regionfs: Config for one
// region (`regionfs serve --config`) and Edge for the stateless client
// endpoint (`regionfs edge --config`). Both are YAML files, decoded strictly
// (unknown keys are errors), completed with defaults and checked by
// Validate, which reports every mistake with the key path and what is
// expected. A loaded config is immutable.
//
// The package imports nothing from the rest of regionfs; cmd/regionfs turns
// a Config into the options of the engine, the control plane, the API
// servers and the mount targets.
package config

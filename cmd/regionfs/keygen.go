package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/engine/kms"
)

// secretFile is one file a config names that keygen can write.
type secretFile struct {
	path, what string
	gen        func() ([]byte, error)
	check      func(path string) error // validates an existing file
}

func newKeygenCmd() *cobra.Command {
	var paths []string
	var owner string
	var edge bool
	cmd := &cobra.Command{
		Use:   "keygen --config FILE... [--owner USER[:GROUP]]",
		Short: "Write the secret and key files a region (or edge) config names, with safe permissions",
		Long: `keygen reads a region config (or an edge config with --edge) and writes every
secret or key file it names that does not exist yet:

  credentials[].secret_file     an access key's secret (40 characters)
  kms_keys[].key_file           32 bytes of KMS key material (hex)
  peers[].secret_file           the replication pair secret (48 characters)
  replicate.self_secret_file    the region's secret for its own zones

Files are created with mode 0600 (their new directories 0700), never
overwritten: an existing file is checked and kept. With --owner they are
given to the account the service runs as (the systemd unit's "regionfs").

A pair secret and the credentials' secrets must be the same everywhere: run
keygen on one host, then copy those files, with their modes, to the other
region's host and to the edges before running keygen there (it keeps them
and writes only what is missing). --config may be given several times (a
file named by two configs is written once). docs/production.md shows the
steps.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var files []secretFile
			for _, path := range paths {
				if edge {
					cfg, err := config.LoadEdge(path)
					if err != nil {
						return err
					}
					files = append(files, credentialFiles(cfg.Credentials)...)
					continue
				}
				cfg, err := config.Load(path)
				if err != nil {
					return err
				}
				files = append(files, regionSecretFiles(cfg)...)
			}
			uid, gid := -1, -1
			if owner != "" {
				var err error
				if uid, gid, err = lookupOwner(owner); err != nil {
					return err
				}
			}
			return writeSecretFiles(cmd.OutOrStdout(), files, uid, gid)
		},
	}
	cmd.Flags().StringArrayVar(&paths, "config", nil, "region config file (YAML); may be repeated")
	cmd.Flags().BoolVar(&edge, "edge", false, "the configs are edge configs")
	cmd.Flags().StringVar(&owner, "owner", "", "give the files (and new directories) to USER[:GROUP]")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// regionSecretFiles lists the files of a region config keygen can write.
func regionSecretFiles(cfg *config.Config) []secretFile {
	files := credentialFiles(cfg.Credentials)
	for _, k := range cfg.KMSKeys {
		files = append(files, secretFile{path: k.KeyFile, what: "KMS key " + k.ID,
			gen: func() ([]byte, error) {
				m, err := kms.NewDataKey()
				return []byte(hex.EncodeToString(m) + "\n"), err
			},
			check: func(p string) error { _, err := readKeyFile(p); return err }})
	}
	for _, p := range cfg.Peers {
		if p.SecretFile != "" {
			peer := p
			files = append(files, secretFile{path: p.SecretFile, what: "replication pair secret with " + p.Name,
				gen:   textSecret(48),
				check: func(string) error { _, err := peer.PeerSecret(); return err }})
		}
	}
	if f := cfg.Replicate.SelfSecretFile; f != "" {
		files = append(files, secretFile{path: f, what: "replication self secret", gen: textSecret(48),
			check: func(p string) error { _, err := readSelfSecret(p); return err }})
	}
	return files
}

func credentialFiles(creds []config.Credential) []secretFile {
	var files []secretFile
	for _, c := range creds {
		if c.SecretFile == "" {
			continue
		}
		cred := c
		files = append(files, secretFile{path: c.SecretFile, what: "secret of access key " + c.AccessKeyID, gen: textSecret(40),
			check: func(string) error {
				_, err := config.Secrets([]config.Credential{cred})
				return err
			}})
	}
	return files
}

// textSecret makes n random characters of an alphabet safe in YAML, shells
// and environment variables.
func textSecret(n int) func() ([]byte, error) {
	return func() ([]byte, error) {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		for i := range b {
			b[i] = alphabet[int(b[i])%len(alphabet)] // 256 = 4·62 + 8: a negligible bias
		}
		return append(b, '\n'), nil
	}
}

// writeSecretFiles writes the missing files and checks the others. Two
// entries may name one file (one pair secret for two peers): it is written
// once.
func writeSecretFiles(out io.Writer, files []secretFile, uid, gid int) error {
	done := map[string]bool{}
	var errs []error
	for _, f := range files {
		if done[f.path] {
			continue
		}
		done[f.path] = true
		if _, err := os.Lstat(f.path); err == nil {
			if err := f.check(f.path); err != nil {
				errs = append(errs, fmt.Errorf("%s (%s) exists but is not usable: %w", f.path, f.what, err))
				continue
			}
			fmt.Fprintf(out, "kept   %s (%s)\n", f.path, f.what)
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		if err := writeSecret(f, uid, gid); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", f.path, f.what, err))
			continue
		}
		fmt.Fprintf(out, "wrote  %s (%s, mode 0600)\n", f.path, f.what)
	}
	return errors.Join(errs...)
}

func writeSecret(f secretFile, uid, gid int) error {
	if err := mkdirOwned(filepath.Dir(f.path), uid, gid); err != nil {
		return err
	}
	b, err := f.gen()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), "."+filepath.Base(f.path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if uid >= 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			tmp.Close()
			return err
		}
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Link rather than rename: an existing file (written meanwhile) is
	// never replaced.
	if err := os.Link(tmp.Name(), f.path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(f.path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// mkdirOwned creates dir and its missing parents with mode 0700, owned by
// uid:gid when given.
func mkdirOwned(dir string, uid, gid int) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := mkdirOwned(filepath.Dir(dir), uid, gid); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if uid >= 0 {
		return os.Chown(dir, uid, gid)
	}
	return nil
}

// lookupOwner resolves USER[:GROUP] (names or numbers); the group defaults
// to the user's.
func lookupOwner(s string) (uid, gid int, err error) {
	name, group, _ := strings.Cut(s, ":")
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			return 0, 0, fmt.Errorf("--owner: no user %q", name)
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			if g, err = user.LookupGroupId(group); err != nil {
				return 0, 0, fmt.Errorf("--owner: no group %q", group)
			}
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	return uid, gid, nil
}

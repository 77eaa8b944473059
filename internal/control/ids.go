package control

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
)

// Resource id prefixes.
const (
	fsPrefix  = "fs-"
	mtPrefix  = "fsmt-"
	apPrefix  = "fsap-"
	eniPrefix = "eni-"
)

var (
	fsIDPattern  = regexp.MustCompile(`^fs-[0-9a-f]{8,40}$`)
	apIDPattern  = regexp.MustCompile(`^fsap-[0-9a-f]{8,40}$`)
	arnPartition = regexp.MustCompile(`^aws[-a-z]*$`)
)

// newID returns prefix and random hex digits: 17 for long ids (starting with
// 0, as EFS's do), 8 for short ones.
func newID(prefix string, short bool) string {
	var b [9]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	if short {
		return prefix + h[:8]
	}
	return prefix + "0" + h[:16]
}

// FileSystemARN is the ARN of file system id in this region.
func (r *Region) FileSystemARN(id string) string {
	return "arn:aws:elasticfilesystem:" + r.o.Region.Name + ":" + r.o.Region.AccountID + ":file-system/" + id
}

// AccessPointARN is the ARN of access point id in this region.
func (r *Region) AccessPointARN(id string) string {
	return "arn:aws:elasticfilesystem:" + r.o.Region.Name + ":" + r.o.Region.AccountID + ":access-point/" + id
}

func (r *Region) kmsKeyARN(keyID string) string {
	return "arn:aws:kms:" + r.o.Region.Name + ":" + r.o.Region.AccountID + ":key/" + keyID
}

// resourceRef is a parsed file system or access point reference.
type resourceRef struct {
	id   string
	ours bool // an id, or an ARN of this region and account
}

// parseRef parses an id or an elasticfilesystem ARN whose resource has
// kind ("file-system" or "access-point") and whose id matches pattern.
// It reports false for anything malformed.
func (r *Region) parseRef(s, kind string, pattern *regexp.Regexp) (resourceRef, bool) {
	if !strings.HasPrefix(s, "arn:") {
		return resourceRef{id: s, ours: true}, pattern.MatchString(s)
	}
	// arn:partition:elasticfilesystem:region:account:kind/id
	parts := strings.Split(s, ":")
	if len(parts) != 6 || !arnPartition.MatchString(parts[1]) || parts[2] != "elasticfilesystem" {
		return resourceRef{}, false
	}
	res, ok := strings.CutPrefix(parts[5], kind+"/")
	if !ok || !pattern.MatchString(res) {
		return resourceRef{}, false
	}
	ours := parts[1] == "aws" && parts[3] == r.o.Region.Name && parts[4] == r.o.Region.AccountID
	return resourceRef{id: res, ours: ours}, true
}

// openFSLocked is lookupFSLocked in a region that is not closed.
func (r *Region) openFSLocked(ref string) (*fsRecord, error) {
	if err := r.checkLocked(); err != nil {
		return nil, err
	}
	return r.lookupFSLocked(ref)
}

// openAvailableFSLocked is openFSLocked for a change that needs the file
// system available.
func (r *Region) openAvailableFSLocked(ref string) (*fsRecord, error) {
	f, err := r.openFSLocked(ref)
	if err != nil {
		return nil, err
	}
	if f.State != StateAvailable {
		return nil, wrongFSState(f.ID, f.State)
	}
	return f, nil
}

// lookupFSLocked resolves a file system id or ARN.
func (r *Region) lookupFSLocked(ref string) (*fsRecord, error) {
	p, ok := r.parseRef(ref, "file-system", fsIDPattern)
	if !ok {
		return nil, badRequest("%s", PatternMessage("FileSystemId", ref, FileSystemRefPattern))
	}
	if f, found := r.fss[p.id]; found && p.ours {
		return f, nil
	}
	return nil, fsNotFound(ref)
}

// lookupAPLocked resolves an access point id or ARN.
func (r *Region) lookupAPLocked(ref string) (*apRecord, error) {
	p, ok := r.parseRef(ref, "access-point", apIDPattern)
	if !ok {
		return nil, badRequest("%s", PatternMessage("AccessPointId", ref, AccessPointRefPattern))
	}
	if a, found := r.aps[p.id]; found && p.ours {
		return a, nil
	}
	return nil, apNotFound(ref)
}

func (r *Region) lookupMTLocked(id string) (*mtRecord, error) {
	if !MountTargetIDPattern.MatchString(id) {
		return nil, badRequest("%s", PatternMessage("MountTargetId", id, MountTargetIDPattern))
	}
	mt, ok := r.mts[id]
	if !ok {
		return nil, mtNotFound(id)
	}
	return mt, nil
}

// clip bounds a caller-supplied value quoted in a message.
func clip(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

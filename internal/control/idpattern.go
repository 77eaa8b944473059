package control

import (
	"fmt"
	"regexp"
	"strings"
)

// The EFS model's patterns of the ids its operations take: a file system
// or an access point as an id or an ARN, a mount target as an id. Every
// edge that checks one (the EFS API, replication configurations, drills,
// CloudFormation's properties) checks these, and refuses with
// PatternMessage.
var (
	FileSystemRefPattern  = regexp.MustCompile(`^(arn:aws[-a-z]*:elasticfilesystem:[0-9a-z-:]+:file-system/fs-[0-9a-f]{8,40}|fs-[0-9a-f]{8,40})$`)
	AccessPointRefPattern = regexp.MustCompile(`^(arn:aws[-a-z]*:elasticfilesystem:[0-9a-z-:]+:access-point/fsap-[0-9a-f]{8,40}|fsap-[0-9a-f]{8,40})$`)
	MountTargetIDPattern  = regexp.MustCompile(`^fsmt-[0-9a-f]{8,40}$`)
)

// PatternMessage is AWS's message refusing value v of member (named as
// in the request: "FileSystemId", "Destinations.1.FileSystemId"; AWS
// writes it with a lower-case first letter) that does not match pattern:
//
//	1 validation error detected: Value 'x' at 'fileSystemId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(…)$
func PatternMessage(member, v string, pattern *regexp.Regexp) string {
	return fmt.Sprintf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: %s",
		ClipValue(v), lowerFirst(member), pattern)
}

// ClipValue shortens a client's value quoted in a message to 100 bytes
// (valid UTF-8).
func ClipValue(s string) string {
	if len(s) > 100 {
		s = strings.ToValidUTF8(s[:100], "") + "…"
	}
	return s
}

func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}

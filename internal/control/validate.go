package control

import (
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

var (
	tagKeyChars   = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$`)
	tagValueChars = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
	octalPerms    = regexp.MustCompile(`^[0-7]{3,4}$`)
)

// Enumerations.
var (
	performanceModes = []string{PerformanceGeneralPurpose, PerformanceMaxIO}
	throughputModes  = []string{ThroughputBursting, ThroughputProvisioned, ThroughputElastic}
	protections      = []string{ProtectionEnabled, ProtectionDisabled, ProtectionReplicating}
	transitionRules  = []string{"AFTER_1_DAY", "AFTER_7_DAYS", "AFTER_14_DAYS", "AFTER_30_DAYS", "AFTER_60_DAYS", "AFTER_90_DAYS", "AFTER_180_DAYS", "AFTER_270_DAYS", "AFTER_365_DAYS"}
	primaryRules     = []string{"AFTER_1_ACCESS"}
)

// transitionDays is the age a transition rule names.
func transitionDays(rule string) int {
	switch rule {
	case "AFTER_1_DAY":
		return 1
	case "AFTER_7_DAYS":
		return 7
	case "AFTER_14_DAYS":
		return 14
	case "AFTER_30_DAYS":
		return 30
	case "AFTER_60_DAYS":
		return 60
	case "AFTER_90_DAYS":
		return 90
	case "AFTER_180_DAYS":
		return 180
	case "AFTER_270_DAYS":
		return 270
	case "AFTER_365_DAYS":
		return 365
	}
	return 0
}

func oneOf(member, v string, values []string) error {
	if !slices.Contains(values, v) {
		return badRequest("Invalid value '%s' for %s; valid values: %s.", clip(v), member, strings.Join(values, ", "))
	}
	return nil
}

// checkTagKey applies EFS's tag key rules: 1–128 characters of letters,
// spaces, digits and _.:/=+-@, not starting with "aws:".
func checkTagKey(k string) error {
	n := utf8.RuneCountInString(k)
	switch {
	case !utf8.ValidString(k):
		return badRequest("Tag key is not valid UTF-8.")
	case n < 1 || n > 128:
		return badRequest("Tag key '%s' must be 1 to 128 characters long.", clip(k))
	case len(k) >= 4 && strings.EqualFold(k[:4], "aws:"):
		return badRequest("Tag key '%s' uses the reserved prefix 'aws:'.", clip(k))
	case !tagKeyChars.MatchString(k):
		return badRequest("Tag key '%s' contains characters that are not allowed.", clip(k))
	}
	return nil
}

func checkTagValue(k, v string) error {
	switch {
	case !utf8.ValidString(v):
		return badRequest("Value of tag '%s' is not valid UTF-8.", clip(k))
	case utf8.RuneCountInString(v) > 256:
		return badRequest("Value of tag '%s' must be at most 256 characters long.", clip(k))
	case !tagValueChars.MatchString(v):
		return badRequest("Value of tag '%s' contains characters that are not allowed.", clip(k))
	}
	return nil
}

// checkTags validates tags given in one request (no key twice).
func checkTags(tags []Tag) error {
	if len(tags) > MaxTags {
		return badRequest("A resource can have at most %d tags; %d were given.", MaxTags, len(tags))
	}
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		if err := checkTagKey(t.Key); err != nil {
			return err
		}
		if err := checkTagValue(t.Key, t.Value); err != nil {
			return err
		}
		if seen[t.Key] {
			return badRequest("Tag key '%s' is given more than once.", clip(t.Key))
		}
		seen[t.Key] = true
	}
	return nil
}

// mergeTags returns old with tags added or overwritten, sorted by key (a
// new slice).
func mergeTags(old, tags []Tag) []Tag {
	out := slices.Clone(old)
	for _, t := range tags {
		i := slices.IndexFunc(out, func(o Tag) bool { return o.Key == t.Key })
		if i >= 0 {
			out[i].Value = t.Value
		} else {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b Tag) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// removeTags returns old without keys (a new slice).
func removeTags(old []Tag, keys []string) []Tag {
	return slices.DeleteFunc(slices.Clone(old), func(t Tag) bool { return slices.Contains(keys, t.Key) })
}

// checkAccessPointPath applies EFS's root directory rules: "/" or one to
// four components, each not starting with "." and without $#<>;`|&?{}^*
// or newlines, at most 100 characters in all.
func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func checkAccessPointPath(p string) error {
	if p == "/" {
		return nil
	}
	if strings.ContainsFunc(p, isControl) {
		// NUL above all: such a path can never be created or mounted.
		return badRequest("Invalid root directory path %q: control characters are not allowed.", clip(p))
	}
	if !utf8.ValidString(p) || utf8.RuneCountInString(p) > 100 || !strings.HasPrefix(p, "/") {
		return badRequest("Invalid root directory path '%s': it must be '/' or an absolute path of at most 100 characters.", clip(p))
	}
	parts := strings.Split(p[1:], "/")
	if len(parts) > 4 {
		return badRequest("Invalid root directory path '%s': at most 4 directory levels are allowed.", clip(p))
	}
	for _, c := range parts {
		// The EFS model's pattern.
		if c == "" || c[0] == '.' || strings.ContainsAny(c, "$#<>;`|&?{}^*\n") {
			return badRequest("Invalid root directory path '%s': component '%s' is not allowed.", clip(p), clip(c))
		}
	}
	return nil
}

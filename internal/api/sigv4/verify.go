package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the only signing algorithm accepted.
const Algorithm = "AWS4-HMAC-SHA256"

// DefaultMaxSkew is how far a request's time may be from the server's clock,
// as on AWS.
const DefaultMaxSkew = 15 * time.Minute

// maxPresignExpires is the longest X-Amz-Expires AWS accepts (7 days).
const maxPresignExpires = 7 * 24 * time.Hour

const (
	timeFormat = "20060102T150405Z"
	dateFormat = "20060102"
	terminator = "aws4_request"
)

// Options configure a Verifier.
type Options struct {
	// Secret returns the secret access key of an access key id. Required.
	Secret func(accessKeyID string) (secret string, ok bool)
	// Region reports whether a credential-scope region is served here;
	// nil accepts any region.
	Region func(region string) bool
	// Services lists the credential-scope services served here; empty
	// accepts any. A correctly signed request for another service fails
	// with ErrUnsupportedService (its signature is checked first, so that
	// the answer never tells an unauthenticated caller anything).
	Services []string
	// Clock returns the current time; time.Now when nil.
	Clock func() time.Time
	// MaxSkew defaults to DefaultMaxSkew.
	MaxSkew time.Duration
}

// Verifier checks SigV4 signatures. It is immutable and safe for concurrent
// use.
type Verifier struct {
	o Options
}

// New returns a Verifier.
func New(o Options) *Verifier {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.MaxSkew <= 0 {
		o.MaxSkew = DefaultMaxSkew
	}
	return &Verifier{o: o}
}

// Verify checks the signature of r, whose body has already been read into
// body (r.Body is not touched). It returns the caller's Identity, or an
// *Error wrapping one of the sentinels. On failure the returned Identity
// holds whatever of the credential scope could be parsed, so that the caller
// can answer in the right protocol.
func (v *Verifier) Verify(r *http.Request, body []byte) (Identity, error) {
	a, err := parse(r)
	if err != nil {
		return a.identity(), err
	}
	id := a.identity()
	if err := v.checkScope(a); err != nil {
		return id, err
	}
	if err := v.checkTime(a); err != nil {
		return id, err
	}
	if a.securityToken != "" {
		return id, fail(ErrUnknownAccessKey, "The security token included in the request is invalid.")
	}
	secret, ok := v.o.Secret(a.accessKeyID)
	if !ok {
		return id, fail(ErrUnknownAccessKey, "The security token included in the request is invalid.")
	}
	payloadHash := hashHex(body)
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && !strings.EqualFold(h, payloadHash) {
		return id, fail(ErrSignatureMismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	creq := canonicalRequest(r, a, payloadHash)
	want := signature(secret, a, creq)
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(a.signature))) {
		return id, fail(ErrSignatureMismatch, "The request signature we calculated does not match the signature you provided. "+
			"Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	if !v.serves(a.service) {
		return id, fail(ErrUnsupportedService, fmt.Sprintf("regionfs does not implement the '%s' API.", clip(a.service)))
	}
	return id, nil
}

// serves reports whether service is one of Options.Services.
func (v *Verifier) serves(service string) bool {
	if len(v.o.Services) == 0 {
		return true
	}
	for _, s := range v.o.Services {
		if s == service {
			return true
		}
	}
	return false
}

func (v *Verifier) checkScope(a *auth) error {
	if a.terminator != terminator {
		return fail(ErrSignatureMismatch, fmt.Sprintf("Credential should be scoped with a valid terminator: 'aws4_request', not '%s'.", a.terminator))
	}
	if v.o.Region != nil && !v.o.Region(a.region) {
		return fail(ErrInvalidRegion, fmt.Sprintf("Credential should be scoped to a valid region, not '%s'.", a.region))
	}
	if d := a.when.Format(dateFormat); d != a.scopeDate {
		return fail(ErrSignatureMismatch, fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			a.scopeDate, d, a.when.Format(timeFormat)))
	}
	return nil
}

func (v *Verifier) checkTime(a *auth) error {
	now := v.o.Clock().UTC()
	skew := v.o.MaxSkew
	mins := int(skew / time.Minute)
	if a.when.After(now.Add(skew)) {
		return fail(ErrExpired, fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %d min.)",
			a.when.Format(timeFormat), now.Add(skew).Format(timeFormat), now.Format(timeFormat), mins))
	}
	if a.presigned {
		if now.After(a.when.Add(a.expires)) {
			return fail(ErrExpired, "Request has expired")
		}
		return nil
	}
	if a.when.Before(now.Add(-skew)) {
		return fail(ErrExpired, fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %d min.)",
			a.when.Format(timeFormat), now.Add(-skew).Format(timeFormat), now.Format(timeFormat), mins))
	}
	return nil
}

// auth is the parsed signature of a request.
type auth struct {
	presigned     bool
	accessKeyID   string
	scopeDate     string
	region        string
	service       string
	terminator    string
	signedHeaders []string
	signature     string
	when          time.Time
	whenRaw       string // as sent, for the string to sign
	expires       time.Duration
	securityToken string
}

func (a *auth) identity() Identity {
	if a == nil {
		return Identity{}
	}
	return Identity{AccessKeyID: a.accessKeyID, Region: a.region, Service: a.service}
}

func (a *auth) scope() string {
	return a.scopeDate + "/" + a.region + "/" + a.service + "/" + a.terminator
}

func canonicalRequest(r *http.Request, a *auth, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(CanonicalURI(r.URL))
	b.WriteByte('\n')
	b.WriteString(CanonicalQuery(r.URL.RawQuery, a.presigned))
	b.WriteByte('\n')
	for _, h := range a.signedHeaders {
		b.WriteString(h)
		b.WriteByte(':')
		b.WriteString(headerValue(r, h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(a.signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

func signature(secret string, a *auth, creq string) string {
	sts := Algorithm + "\n" + a.whenRaw + "\n" + a.scope() + "\n" + hashHex([]byte(creq))
	k := hmacSHA256([]byte("AWS4"+secret), a.scopeDate)
	k = hmacSHA256(k, a.region)
	k = hmacSHA256(k, a.service)
	k = hmacSHA256(k, a.terminator)
	return hex.EncodeToString(hmacSHA256(k, sts))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// headerValue is the canonical value of the signed header name: all its
// values, each trimmed with inner runs of spaces collapsed, joined by commas.
func headerValue(r *http.Request, name string) string {
	var vals []string
	switch name {
	case "host":
		vals = []string{r.Host}
	case "content-length":
		vals = r.Header.Values("Content-Length")
		if len(vals) == 0 && r.ContentLength >= 0 {
			vals = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		vals = r.Header.Values(name)
		if len(vals) == 0 {
			vals = r.TransferEncoding
		}
	default:
		vals = r.Header.Values(name)
	}
	for i, v := range vals {
		vals[i] = collapseSpaces(v)
	}
	return strings.Join(vals, ",")
}

func collapseSpaces(s string) string {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "  ") && !strings.ContainsAny(s, "\t") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// CanonicalURI is the SigV4 canonical URI of u for every service but S3:
// the path as sent (already escaped) URI-encoded once more.
func CanonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	return escape(p, false)
}

// CanonicalQuery is the SigV4 canonical query string of a raw query: each
// name and value decoded then encoded with only the RFC 3986 unreserved
// characters left as they are, sorted by encoded name then value. With
// presigned, X-Amz-Signature is left out.
func CanonicalQuery(raw string, presigned bool) string {
	if raw == "" {
		return ""
	}
	type param struct{ k, v string }
	var ps []param
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, v = unescapeQuery(k), unescapeQuery(v)
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		ps = append(ps, param{escape(k, true), escape(v, true)})
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].k != ps[j].k {
			return ps[i].k < ps[j].k
		}
		return ps[i].v < ps[j].v
	})
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

func unescapeQuery(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// escape percent-encodes every byte but A-Z a-z 0-9 - . _ ~ (and '/' unless
// encodeSlash), with upper-case hex.
func escape(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

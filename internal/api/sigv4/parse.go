package sigv4

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxAuthLen bounds the Authorization header and presigned parameters that
// are parsed at all.
const maxAuthLen = 8 << 10

// parse extracts the signature of r from its Authorization header or its
// presigned query parameters. On error the returned auth holds what could be
// parsed (possibly nil).
func parse(r *http.Request) (*auth, error) {
	h := r.Header.Values("Authorization")
	var q url.Values
	if strings.Contains(r.URL.RawQuery, "X-Amz-") {
		q, _ = url.ParseQuery(r.URL.RawQuery)
	}
	presigned := q.Get("X-Amz-Algorithm") != "" || q.Get("X-Amz-Signature") != "" || q.Get("X-Amz-Credential") != ""
	switch {
	case len(h) == 0 && !presigned:
		return nil, fail(ErrMissingAuthentication, "Missing Authentication Token")
	case len(h) > 0 && presigned:
		return nil, fail(ErrIncompleteSignature, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified")
	case len(h) > 1:
		return nil, fail(ErrIncompleteSignature, "Only one Authorization header is allowed")
	case presigned:
		return parseQuery(r, q)
	default:
		return parseHeader(r, h[0])
	}
}

func parseHeader(r *http.Request, h string) (*auth, error) {
	if len(h) > maxAuthLen {
		return nil, fail(ErrIncompleteSignature, "Authorization header is too long")
	}
	h = strings.TrimSpace(h)
	alg, rest, _ := strings.Cut(h, " ")
	if alg != Algorithm {
		if strings.Contains(alg, "=") || rest == "" {
			return nil, fail(ErrIncompleteSignature, fmt.Sprintf("Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=%s", clip(h)))
		}
		return nil, fail(ErrIncompleteSignature, fmt.Sprintf("Unsupported AWS 'algorithm': '%s'", clip(alg)))
	}
	params := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fail(ErrIncompleteSignature, fmt.Sprintf("'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", clip(part), clip(h)))
		}
		if _, dup := params[k]; dup {
			return nil, fail(ErrIncompleteSignature, fmt.Sprintf("Authorization header has a duplicate '%s' parameter.", clip(k)))
		}
		params[k] = v
	}
	var missing []string
	for _, k := range []string{"Credential", "Signature", "SignedHeaders"} {
		if params[k] == "" {
			missing = append(missing, fmt.Sprintf("Authorization header requires '%s' parameter.", k))
		}
	}
	dateRaw := r.Header.Get("X-Amz-Date")
	if dateRaw == "" && r.Header.Get("Date") == "" {
		missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if len(missing) > 0 {
		return nil, fail(ErrIncompleteSignature, strings.Join(missing, " ")+" Authorization="+clip(h))
	}
	a, err := parseCredential(params["Credential"])
	if err != nil {
		return a, err
	}
	a.signature = params["Signature"]
	if err := parseSignedHeaders(a, params["SignedHeaders"]); err != nil {
		return a, err
	}
	if dateRaw != "" {
		t, err := time.Parse(timeFormat, dateRaw)
		if err != nil {
			return a, fail(ErrIncompleteSignature, fmt.Sprintf("Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", clip(dateRaw)))
		}
		a.when, a.whenRaw = t, dateRaw
	} else {
		t, err := http.ParseTime(r.Header.Get("Date"))
		if err != nil {
			return a, fail(ErrIncompleteSignature, fmt.Sprintf("Date header is not a valid HTTP date: '%s'", clip(r.Header.Get("Date"))))
		}
		a.when, a.whenRaw = t.UTC(), t.UTC().Format(timeFormat)
	}
	a.securityToken = r.Header.Get("X-Amz-Security-Token")
	return a, checkSignatureHex(a)
}

func parseQuery(r *http.Request, q url.Values) (*auth, error) {
	if len(r.URL.RawQuery) > 4*maxAuthLen {
		return nil, fail(ErrIncompleteSignature, "Query string is too long")
	}
	var missing []string
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date"} {
		if len(q[k]) != 1 || q.Get(k) == "" {
			missing = append(missing, fmt.Sprintf("AWS query-string parameters must include '%s'.", k))
		}
	}
	if len(missing) > 0 {
		return nil, fail(ErrIncompleteSignature, strings.Join(missing, " ")+" Re-examine the query-string parameters.")
	}
	if alg := q.Get("X-Amz-Algorithm"); alg != Algorithm {
		return nil, fail(ErrIncompleteSignature, fmt.Sprintf("Unsupported AWS 'algorithm': '%s'", clip(alg)))
	}
	a, err := parseCredential(q.Get("X-Amz-Credential"))
	if err != nil {
		return a, err
	}
	a.presigned = true
	a.signature = q.Get("X-Amz-Signature")
	if err := parseSignedHeaders(a, q.Get("X-Amz-SignedHeaders")); err != nil {
		return a, err
	}
	raw := q.Get("X-Amz-Date")
	t, err := time.Parse(timeFormat, raw)
	if err != nil {
		return a, fail(ErrIncompleteSignature, fmt.Sprintf("Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", clip(raw)))
	}
	a.when, a.whenRaw = t, raw
	a.expires = maxPresignExpires
	if e := q.Get("X-Amz-Expires"); e != "" {
		n, err := strconv.Atoi(e)
		if err != nil || n < 1 || time.Duration(n)*time.Second > maxPresignExpires {
			return a, fail(ErrIncompleteSignature, fmt.Sprintf("X-Amz-Expires must be a number of seconds between 1 and 604800, not '%s'.", clip(e)))
		}
		a.expires = time.Duration(n) * time.Second
	}
	a.securityToken = q.Get("X-Amz-Security-Token")
	return a, checkSignatureHex(a)
}

func parseCredential(c string) (*auth, error) {
	parts := strings.Split(c, "/")
	if len(parts) != 5 {
		return nil, fail(ErrIncompleteSignature, fmt.Sprintf("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", clip(c)))
	}
	a := &auth{accessKeyID: parts[0], scopeDate: parts[1], region: parts[2], service: parts[3], terminator: parts[4]}
	for i, what := range []string{"access key id", "date", "region", "service", "terminator"} {
		if parts[i] == "" {
			return a, fail(ErrIncompleteSignature, fmt.Sprintf("Credential has an empty %s: '%s'", what, clip(c)))
		}
	}
	if _, err := time.Parse(dateFormat, a.scopeDate); err != nil {
		return a, fail(ErrIncompleteSignature, fmt.Sprintf("Credential date must be in YYYYMMDD format, got '%s'", clip(a.scopeDate)))
	}
	return a, nil
}

func parseSignedHeaders(a *auth, s string) error {
	hs := strings.Split(s, ";")
	host := false
	for _, h := range hs {
		if h == "" || h != strings.ToLower(h) || strings.ContainsAny(h, " \t:") {
			return fail(ErrIncompleteSignature, fmt.Sprintf("SignedHeaders must be a semicolon-separated list of lower-case header names, got '%s'", clip(s)))
		}
		host = host || h == "host"
	}
	if !host {
		return fail(ErrSignatureMismatch, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	a.signedHeaders = hs
	return nil
}

func checkSignatureHex(a *auth) error {
	if len(a.signature) != 64 {
		return fail(ErrIncompleteSignature, "Signature must be 64 hexadecimal characters.")
	}
	for i := 0; i < len(a.signature); i++ {
		c := a.signature[i] | 0x20
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fail(ErrIncompleteSignature, "Signature must be 64 hexadecimal characters.")
		}
	}
	return nil
}

// clip keeps echoed client input short in messages.
func clip(s string) string {
	if len(s) > 256 {
		return s[:256] + "…"
	}
	return s
}

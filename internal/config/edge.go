package config

import (
	"fmt"
	"os"
	"strings"
)

// Edge is the configuration of the stateless client endpoint
// (`regionfs edge`): it verifies SigV4 with the same credentials as the
// regions and forwards each request to the API listener of the region its
// credential scope names.
type Edge struct {
	// Listen is the client endpoint (default 127.0.0.1:7070).
	Listen string `yaml:"listen"`
	// TLS makes the client endpoint HTTPS.
	TLS         *TLS         `yaml:"tls,omitempty"`
	Credentials []Credential `yaml:"credentials"`
	// Regions are the regions the edge forwards to.
	Regions []EdgeRegion `yaml:"regions"`
	Log     Log          `yaml:"log"`
}

// EdgeRegion is a region as the edge reaches it.
type EdgeRegion struct {
	Name string `yaml:"name"`
	// API is the region's API listener, host:port.
	API string `yaml:"api"`
	// TLS, when set, makes the edge connect with TLS (CAFile verifies the
	// region; CertFile/KeyFile are the edge's client certificate).
	TLS *TLS `yaml:"tls,omitempty"`
}

// LoadEdge reads, completes and validates an edge config file.
func LoadEdge(path string) (*Edge, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	e, err := ParseEdge(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return e, nil
}

// ParseEdge decodes, completes and validates an edge config.
func ParseEdge(b []byte) (*Edge, error) {
	var e Edge
	if err := decodeStrict(b, &e); err != nil {
		return nil, err
	}
	e.SetDefaults()
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return &e, nil
}

// SetDefaults fills in unset fields.
func (e *Edge) SetDefaults() {
	if e.Listen == "" {
		e.Listen = DefaultAPIListen
	}
	if e.Log.Level == "" {
		e.Log.Level = "info"
	}
	if e.Log.Format == "" {
		e.Log.Format = "text"
	}
}

// Validate checks e and explains every mistake.
func (e *Edge) Validate() error {
	var p problems
	checkListener(&p, "edge", Listener{Listen: e.Listen, TLS: e.TLS}, true)
	checkCredentials(&p, "credentials", e.Credentials)
	if len(e.Regions) == 0 {
		p.add("regions", "at least one region to forward to is needed")
	}
	seen := map[string]bool{}
	for i, r := range e.Regions {
		path := fmt.Sprintf("regions[%d]", i)
		p.once(path+".name", seen, r.Name, regionRe, "a region name", "listed twice")
		if err := checkHostPort(r.API); err != nil {
			p.add(path+".api", "%v", err)
		}
		checkTLS(&p, path+".tls", r.TLS, false)
	}
	checkLog(&p, e.Log)
	return p.err()
}

// Secrets resolves every credential's secret (reading secret files) into a
// map from access key id to secret.
func Secrets(creds []Credential) (map[string]string, error) {
	m := make(map[string]string, len(creds))
	for _, c := range creds {
		s := c.SecretAccessKey
		if c.SecretFile != "" {
			b, err := os.ReadFile(c.SecretFile)
			if err != nil {
				return nil, fmt.Errorf("config: secret of %s: %w", c.AccessKeyID, err)
			}
			s = strings.TrimSpace(string(b))
			if len(s) < 16 {
				return nil, fmt.Errorf("config: secret of %s in %s is too short (at least 16 characters)", c.AccessKeyID, c.SecretFile)
			}
		}
		m[c.AccessKeyID] = s
	}
	return m, nil
}

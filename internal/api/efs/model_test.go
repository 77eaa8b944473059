package efs_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/testkit"
)

// botocore's model of EFS (the one the installed aws CLI and boto3 use).
type model struct {
	Operations map[string]struct {
		HTTP struct {
			Method     string `json:"method"`
			RequestURI string `json:"requestUri"`
		} `json:"http"`
		Input *struct {
			Shape string `json:"shape"`
		} `json:"input"`
	} `json:"operations"`
	Shapes map[string]shape `json:"shapes"`
}

type shape struct {
	Type    string            `json:"type"`
	Members map[string]member `json:"members"`
	Member  *member           `json:"member"`
	Enum    []string          `json:"enum"`
	Min     *float64          `json:"min"`
}

type member struct {
	Shape        string `json:"shape"`
	Location     string `json:"location"`
	LocationName string `json:"locationName"`
}

func loadModel(t *testing.T) *model {
	t.Helper()
	var m model
	testkit.BotocoreModel(t, testkit.NeedPython(t, "botocore"), "efs", &m)
	return &m
}

// TestEveryModelMemberAccepted sends every operation of botocore's EFS
// model (but replication's) with every member of its input set to a value
// its shape allows: the handler must route it and decode every member;
// it may refuse the combination for a rule of the service, but never with
// a validation error (the wire form) or an unknown operation.
func TestEveryModelMemberAccepted(t *testing.T) {
	m := loadModel(t)
	s, h := rawServer(t)
	served := 0
	for name, op := range m.Operations {
		if strings.Contains(name, "Replication") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			fs := s.createFS("model-" + name)
			ap := rawRequest(t, h, "POST", "/2015-02-01/access-points", fmt.Sprintf(`{"ClientToken":"ap-%s","FileSystemId":"%s"}`, name, *fs.FileSystemId))
			apID, _ := decodeJSON(t, ap)["AccessPointId"].(string)
			g := &valueGen{m: m, fsID: *fs.FileSystemId, apID: apID, op: name}
			path := op.HTTP.RequestURI
			query := url.Values{}
			body := map[string]any{}
			if op.Input != nil {
				for mn, mb := range m.Shapes[op.Input.Shape].Members {
					v := g.value(mn, mb.Shape)
					switch mb.Location {
					case "uri":
						path = strings.Replace(path, "{"+mb.LocationName+"}", url.PathEscape(fmt.Sprint(v)), 1)
					case "querystring":
						if l, ok := v.([]any); ok {
							for _, x := range l {
								query.Add(mb.LocationName, fmt.Sprint(x))
							}
						} else {
							query.Set(mb.LocationName, fmt.Sprint(v))
						}
					default:
						body[mn] = v
					}
				}
			}
			b, _ := json.Marshal(body)
			target := path
			if len(query) > 0 {
				target += "?" + query.Encode()
			}
			w := rawRequest(t, h, op.HTTP.Method, target, string(b), "Content-Type", "application/json")
			code := w.Header().Get("X-Amzn-Errortype")
			var msg string
			if w.Body.Len() > 0 {
				msg, _ = decodeJSON(t, w)["Message"].(string)
			}
			if w.Code >= 500 || code == "UnknownOperationException" || strings.HasPrefix(msg, "1 validation error") {
				t.Fatalf("%s %s %s: %d %s %q", op.HTTP.Method, target, b, w.Code, code, msg)
			}
			t.Logf("%s %s: %d %s %s", op.HTTP.Method, target, w.Code, code, msg)
		})
		served++
	}
	if served < 28 {
		t.Errorf("the model has %d non-replication operations; regionfs serves 28", served)
	}
}

// valueGen makes values that satisfy the model's shapes.
type valueGen struct {
	m          *model
	fsID, apID string
	op         string
	n          int
}

func (g *valueGen) value(memberName, shapeName string) any {
	g.n++
	sh := g.m.Shapes[shapeName]
	switch sh.Type {
	case "structure":
		o := map[string]any{}
		for mn, mb := range sh.Members {
			o[mn] = g.value(mn, mb.Shape)
		}
		return o
	case "list":
		return []any{g.value(memberName, sh.Member.Shape)}
	case "boolean":
		return true
	case "integer", "long", "double":
		if sh.Min != nil && *sh.Min > 1 {
			return *sh.Min
		}
		return 1
	}
	if len(sh.Enum) > 0 {
		return sh.Enum[0]
	}
	switch shapeName {
	case "FileSystemId":
		return g.fsID
	case "AccessPointId":
		return g.apID
	case "ResourceId":
		return g.fsID
	case "MountTargetId":
		return "fsmt-0123456789abcdef0"
	case "SubnetId":
		return subA
	case "SecurityGroup":
		return sgNFS
	case "IpAddress":
		return fmt.Sprintf("127.1.1.%d", 10+g.n)
	case "Ipv6Address":
		return "fd00::10"
	case "KmsKeyId":
		return "alias/aws/elasticfilesystem"
	case "AvailabilityZoneName":
		return "us-east-1a"
	case "CreationToken", "ClientToken":
		return fmt.Sprintf("tok-%s-%d", g.op, g.n)
	case "Marker", "Token":
		return "opaque-marker"
	case "Path":
		return "/export/app"
	case "Permissions":
		return "0755"
	case "Policy":
		return `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"elasticfilesystem:ClientMount"}]}`
	case "TagKey":
		return "key-" + memberName
	case "TagValue":
		return "value"
	}
	panic("no value for shape " + shapeName)
}

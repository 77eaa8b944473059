package cfn

import (
	"errors"
	"testing"
)

var fuzzSeeds = []string{
	twoThings,
	`{"Resources":{"A":{"Type":"Test::Thing","Properties":{"Name":{"Fn::Join":["-",[{"Ref":"AWS::Region"},"x"]]}}}}}`,
	"Resources:\n  A:\n    Type: Test::Thing\n    Properties:\n      Name: !Select [1, !Split [',', 'a,b,c']]\n",
	"Conditions:\n  C: !Equals [!Ref AWS::Region, us-east-1]\nResources:\n  A:\n    Type: Test::Thing\n    Condition: C\n    Properties:\n      Name: !If [C, !Base64 x, !Ref AWS::NoValue]\n",
	"Mappings:\n  M: {a: {b: c}}\nResources:\n  A: {Type: Test::Thing, Properties: {Name: !FindInMap [M, a, b], Tags: [{Key: k, Value: !GetAZs ''}]}}\n",
	"a: &x [1]\nb: *x\n",
	"Resources: !Ref x\n",
	"{\"Resources\": [",
	"Resources:\n  A:\n    Type: Test::Thing\n    DependsOn: B\n  B:\n    Type: Test::Thing\n    DependsOn: A\n",
}

// FuzzParseTemplate: any body parses or fails with a ValidationError; a
// parsed template's expressions evaluate or fail with one, never a crash.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	types := testTypes(newFake())
	f.Fuzz(func(t *testing.T, body string) {
		tpl, err := ParseTemplate(body, types)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || !errors.Is(err, ErrValidation) {
				t.Fatalf("error %T %v is not a ValidationError", err, err)
			}
			return
		}
		sc := &Scope{T: tpl, Params: map[string]string{}, Pseudo: map[string]string{"AWS::Region": "us-east-1"},
			AZs: func(string) []string { return []string{"us-east-1a"} },
			Resource: func(id string) (string, map[string]string, bool) {
				return "phys-" + id, map[string]string{"Arn": "arn"}, true
			},
		}
		for _, p := range tpl.Parameters {
			if p.Default != nil {
				sc.Params[p.Name] = *p.Default
			}
		}
		for _, id := range tpl.ResourceIDs {
			if _, err := sc.Eval(tpl.Resources[id].Properties); err != nil && !errors.Is(err, ErrValidation) && !errors.Is(err, errNotReady) {
				t.Fatalf("eval %s: %T %v", id, err, err)
			}
		}
		for _, o := range tpl.Outputs {
			if _, err := sc.Eval(o.Value); err != nil && !errors.Is(err, ErrValidation) && !errors.Is(err, errNotReady) {
				t.Fatalf("eval output %s: %v", o.Name, err)
			}
		}
	})
}

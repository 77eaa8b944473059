package cloudformation

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/cfn"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/testkit"
)

// FuzzRequests: any form body gets a well-formed answer below 500, never a
// crash; requests that create stacks start with an empty type registry, so
// a stack's resources fail validation instead of provisioning anything.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{
		"Action=ValidateTemplate&Version=2010-05-15&TemplateBody=Resources%3A%0A%20%20A%3A%20%7BType%3A%20X%3A%3AY%7D",
		"Action=CreateStack&StackName=s&TemplateBody=%7B%7D&Parameters.member.1.ParameterKey=a&Parameters.member.1.ParameterValue=b",
		"Action=DescribeStacks&StackName=arn%3Aaws%3Acloudformation%3Aus-east-1%3A1%3Astack%2Fx%2Fy",
		"Action=ListStacks&StackStatusFilter.member.1=CREATE_COMPLETE&NextToken=p9",
		"Action=CreateChangeSet&StackName=s&ChangeSetName=c&ChangeSetType=CREATE&TemplateBody=%7B%22Resources%22%3A1%7D",
		"Action=DeleteStack&StackName=s&RetainResources.member.x=1",
		"Action=GetTemplateSummary&TemplateBody=a%3A%20%26x%20b",
		"Action=Nope",
	} {
		f.Add(s)
	}
	e, err := cfn.Open(cfn.Options{Region: "us-east-1", AccountID: "123456789012", KV: kv.NewMemory(), Types: cfn.Registry{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close() })
	h := NewHandler(e, slog.New(slog.DiscardHandler))
	h.SettleWait = 0
	f.Fuzz(func(t *testing.T, body string) {
		w := testkit.PostForm(h, body)
		if w.Code >= 500 {
			t.Fatalf("%q → %d %s", body, w.Code, w.Body.String())
		}
		if !strings.Contains(w.Body.String(), Namespace) {
			t.Fatalf("%q → not a CloudFormation response: %s", body, w.Body.String())
		}
	})
}

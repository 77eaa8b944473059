package cfn

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/testkit"
)

// fakeProvider keeps resources in memory; fail makes Create of a logical
// id fail.
type fakeProvider struct {
	mu      sync.Mutex
	n       int
	live    map[string]map[string]any // physical id → props
	tokens  map[string]string         // token → physical id
	fail    map[string]bool
	updates int
	block   chan struct{} // when set, Create waits for it
	// byName: a resource's physical id is its Name property and creating
	// an existing name finds it (as SNS's CreateTopic does).
	byName bool
}

func newFake() *fakeProvider {
	return &fakeProvider{live: map[string]map[string]any{}, tokens: map[string]string{}, fail: map[string]bool{}}
}

func (f *fakeProvider) Create(ctx context.Context, r *Request) (Outcome, error) {
	f.mu.Lock()
	if id, ok := f.tokens[r.Token]; ok {
		f.mu.Unlock()
		return Outcome{PhysicalID: id, Attributes: map[string]string{"Arn": "arn:" + id}}, nil
	}
	if f.fail[r.LogicalID] {
		f.mu.Unlock()
		return Outcome{}, &HandlerError{Code: "InvalidRequest", Message: "no such subnet"}
	}
	f.n++
	id := fmt.Sprintf("phys-%d", f.n)
	if name, _ := r.Props["Name"].(string); f.byName && name != "" {
		id = name
	}
	f.live[id] = r.Props
	f.tokens[r.Token] = id
	block := f.block
	f.mu.Unlock()
	if r.Started != nil {
		r.Started(id)
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		}
	}
	return Outcome{PhysicalID: id, Attributes: map[string]string{"Arn": "arn:" + id}}, nil
}

func (f *fakeProvider) Update(_ context.Context, r *Request) (Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.live[r.PhysicalID]; !ok {
		return Outcome{}, &HandlerError{Code: "NotFound", Message: "gone"}
	}
	f.live[r.PhysicalID] = r.Props
	f.updates++
	return Outcome{PhysicalID: r.PhysicalID, Attributes: map[string]string{"Arn": "arn:" + r.PhysicalID}}, nil
}

func (f *fakeProvider) Delete(_ context.Context, r *Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.live, r.PhysicalID)
	return nil
}

func (f *fakeProvider) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.live)
}

func testTypes(p Provider) Registry {
	return Registry{
		"Test::Thing": {Name: "Test::Thing", Attributes: []string{"Arn"}, Provider: p, Properties: map[string]*Prop{
			"Name":   {Kind: String},
			"Size":   {Kind: Integer, Replace: true},
			"Ref":    {Kind: String},
			"Tags":   {Kind: List, Elem: &Prop{Kind: Object, Fields: map[string]*Prop{"Key": {Kind: String, Required: true}, "Value": {Kind: String, Required: true}}}},
			"Needed": {Kind: String},
		}},
	}
}

func openTest(t *testing.T, store kv.Store, p Provider) *Engine {
	t.Helper()
	e, err := Open(Options{Region: "us-east-1", AccountID: "123456789012", KV: store, Types: testTypes(p),
		AZs: func(string) []string { return []string{"us-east-1a", "us-east-1b"} }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func waitDone(t *testing.T, e *Engine, id string) string {
	t.Helper()
	st := e.Wait(t.Context(), id, 10*time.Second)
	if strings.HasSuffix(st, "IN_PROGRESS") {
		t.Fatalf("stack still %s", st)
	}
	return st
}

const twoThings = `
Parameters:
  Name: {Type: String, Default: first}
Resources:
  A:
    Type: Test::Thing
    Properties: {Name: !Ref Name, Size: 1}
  B:
    Type: Test::Thing
    Properties:
      Ref: !GetAtt A.Arn
      Name: !Sub '${AWS::StackName}-${A}'
Outputs:
  AId: {Value: !Ref A, Export: {Name: !Sub '${AWS::StackName}-a'}}
`

func TestCreateUpdateDelete(t *testing.T) {
	p := newFake()
	e := openTest(t, kv.NewMemory(), p)
	ctx := t.Context()
	id, err := e.CreateStack(ctx, StackInput{StackName: "s1", TemplateBody: twoThings, ClientRequestToken: "tok-1"})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := e.CreateStack(ctx, StackInput{StackName: "s1", TemplateBody: twoThings, ClientRequestToken: "tok-1"}); err != nil || again != id {
		t.Fatalf("retry with the same token: %v %v", again, err)
	}
	if _, err := e.CreateStack(ctx, StackInput{StackName: "s1", TemplateBody: twoThings}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second create: %v", err)
	}
	if st := waitDone(t, e, id); st != CreateComplete {
		t.Fatalf("status %s", st)
	}
	ss, _, _ := e.DescribeStacks(ctx, "s1", "")
	if len(ss[0].Outputs) != 1 || ss[0].Outputs[0].Value != "phys-1" || ss[0].Outputs[0].ExportName != "s1-a" {
		t.Fatalf("outputs %+v", ss[0].Outputs)
	}
	if got := p.live["phys-2"]["Name"]; got != "s1-phys-1" {
		t.Fatalf("B.Name = %v", got)
	}
	// In-place update of A's Name: B unchanged.
	if _, err := e.UpdateStack(ctx, StackInput{StackName: "s1", TemplateBody: twoThings, Parameters: []ParamInput{{Key: "Name", Value: "second"}}}); err != nil {
		t.Fatal(err)
	}
	if st := waitDone(t, e, id); st != UpdateComplete {
		t.Fatalf("update status %s", st)
	}
	if p.updates != 1 || p.count() != 2 {
		t.Fatalf("updates %d live %d", p.updates, p.count())
	}
	if _, err := e.UpdateStack(ctx, StackInput{StackName: "s1", UsePreviousTemplate: true, Parameters: []ParamInput{{Key: "Name", UsePrevious: true}}}); err == nil || err.Error() != noUpdatesPerformed {
		t.Fatalf("no-op update: %v", err)
	}
	// Replacement of A (Size) replaces A and updates B (its Ref changes).
	body := strings.Replace(twoThings, "Size: 1", "Size: 2", 1)
	if _, err := e.UpdateStack(ctx, StackInput{StackName: "s1", TemplateBody: body}); err != nil {
		t.Fatal(err)
	}
	if st := waitDone(t, e, id); st != UpdateComplete {
		t.Fatalf("replace status %s", st)
	}
	if _, ok := p.live["phys-1"]; ok || p.count() != 2 {
		t.Fatalf("old A not deleted: %v", p.live)
	}
	rs, _ := e.DescribeStackResources(ctx, "s1", "", "")
	if len(rs) != 2 || rs[0].PhysicalID != "phys-3" {
		t.Fatalf("resources %+v", rs)
	}
	if err := e.DeleteStack(ctx, "s1", nil, ""); err != nil {
		t.Fatal(err)
	}
	if st := waitDone(t, e, id); st != DeleteComplete {
		t.Fatalf("delete status %s", st)
	}
	if p.count() != 0 {
		t.Fatalf("left behind %v", p.live)
	}
	if _, _, err := e.DescribeStacks(ctx, "s1", ""); err == nil || err.Error() != "Stack with id s1 does not exist" {
		t.Fatalf("describe deleted: %v", err)
	}
	if ss, _, err := e.DescribeStacks(ctx, id, ""); err != nil || ss[0].Status != DeleteComplete {
		t.Fatalf("describe deleted by id: %v", err)
	}
	evs, _, _ := e.DescribeStackEvents(ctx, id, "")
	var statuses []string
	for _, ev := range evs {
		if ev.LogicalID == "s1" {
			statuses = append(statuses, ev.Status)
		}
	}
	slices.Reverse(statuses)
	want := []string{CreateInProgress, CreateComplete, UpdateInProgress, UpdateCompleteCleanupInProgress, UpdateComplete,
		UpdateInProgress, UpdateCompleteCleanupInProgress, UpdateComplete, DeleteInProgress, DeleteComplete}
	if !slices.Equal(statuses, want) {
		t.Fatalf("stack events %v", statuses)
	}
}

func TestRollback(t *testing.T) {
	p := newFake()
	p.fail["B"] = true
	e := openTest(t, kv.NewMemory(), p)
	id, err := e.CreateStack(t.Context(), StackInput{StackName: "bad", TemplateBody: twoThings})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitDone(t, e, id); st != RollbackComplete {
		t.Fatalf("status %s", st)
	}
	if p.count() != 0 {
		t.Fatalf("rollback left %v", p.live)
	}
	ss, _, _ := e.DescribeStacks(t.Context(), "bad", "")
	if !strings.Contains(ss[0].StatusReason, "[B]") {
		t.Fatalf("reason %q", ss[0].StatusReason)
	}
	rs, _ := e.DescribeStackResources(t.Context(), "bad", "B", "")
	if len(rs) != 1 || rs[0].Status != DeleteComplete {
		t.Fatalf("B %+v", rs)
	}
	evs, _, _ := e.DescribeStackEvents(t.Context(), "bad", "")
	found := false
	for _, ev := range evs {
		found = found || (ev.Status == CreateFailed && strings.Contains(ev.Reason, "no such subnet"))
	}
	if !found {
		t.Fatal("no CREATE_FAILED event with the handler's message")
	}
}

// TestReplaceFindsSameResource: a replacement whose create finds the very
// resource it replaces (a custom name) fails the update with
// CloudFormation's message and rolls back; the live resource is not
// deleted by the cleanup (it was, and the stack said UPDATE_COMPLETE).
func TestReplaceFindsSameResource(t *testing.T) {
	p := newFake()
	p.byName = true
	e := openTest(t, kv.NewMemory(), p)
	body := "Resources:\n  A:\n    Type: Test::Thing\n    Properties: {Name: fixed, Size: 1}\n"
	id, err := e.CreateStack(t.Context(), StackInput{StackName: "named", TemplateBody: body})
	if err != nil {
		t.Fatal(err)
	}
	if st := waitDone(t, e, id); st != CreateComplete {
		t.Fatalf("create: %s", st)
	}
	if _, err := e.UpdateStack(t.Context(), StackInput{StackName: "named", TemplateBody: strings.Replace(body, "Size: 1", "Size: 2", 1)}); err != nil {
		t.Fatal(err)
	}
	if st := waitDone(t, e, id); st != UpdateRollbackComplete {
		t.Fatalf("update: %s", st)
	}
	if p.live["fixed"] == nil {
		t.Fatal("the live resource was deleted")
	}
	evs, _, _ := e.DescribeStackEvents(t.Context(), id, "")
	found := false
	for _, ev := range evs {
		found = found || (ev.Status == UpdateFailed && strings.Contains(ev.Reason, "custom-named resource requires replacing. Rename fixed"))
	}
	if !found {
		t.Fatalf("no UPDATE_FAILED naming the custom name: %+v", evs)
	}
	rs, err := e.DescribeStackResources(t.Context(), "named", "", "")
	if err != nil || len(rs) != 1 || rs[0].PhysicalID != "fixed" {
		t.Fatalf("resources %+v, %v", rs, err)
	}
}

func TestUpdateRollback(t *testing.T) {
	p := newFake()
	e := openTest(t, kv.NewMemory(), p)
	id, _ := e.CreateStack(t.Context(), StackInput{StackName: "u", TemplateBody: twoThings})
	waitDone(t, e, id)
	p.fail["C"] = true
	body := twoThings + "  CId: {Value: !Ref C}\n"
	body = strings.Replace(body, "Outputs:", "  C:\n    Type: Test::Thing\n    Properties: {Name: c}\nOutputs:", 1)
	body = strings.Replace(body, "Default: first", "Default: changed", 1)
	if _, err := e.UpdateStack(t.Context(), StackInput{StackName: "u", TemplateBody: body}); err != nil {
		t.Fatal(err)
	}
	if st := waitDone(t, e, id); st != UpdateRollbackComplete {
		t.Fatalf("status %s", st)
	}
	if p.live["phys-1"]["Name"] != "first" || p.count() != 2 {
		t.Fatalf("not restored: %v", p.live)
	}
	tpl, _ := e.GetTemplate(t.Context(), "u", "")
	if tpl != twoThings {
		t.Fatal("template not restored")
	}
}

func TestResumeAfterRestart(t *testing.T) {
	store := kv.NewMemory()
	p := newFake()
	p.block = make(chan struct{})
	e1, err := Open(Options{Region: "us-east-1", AccountID: "123456789012", KV: store, Types: testTypes(p)})
	if err != nil {
		t.Fatal(err)
	}
	id, err := e1.CreateStack(t.Context(), StackInput{StackName: "r", TemplateBody: twoThings})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Until(5*time.Second, func() bool { return p.count() > 0 })
	e1.Close() // "crash" in the middle of creating A
	p.mu.Lock()
	p.block = nil
	p.mu.Unlock()
	e2 := openTest(t, store, p)
	if st := waitDone(t, e2, id); st != CreateComplete {
		t.Fatalf("resumed status %s", st)
	}
	if p.count() != 2 {
		t.Fatalf("resume created %d resources, want 2 (the first adopted by its token)", p.count())
	}
}

func TestChangeSets(t *testing.T) {
	p := newFake()
	e := openTest(t, kv.NewMemory(), p)
	ctx := t.Context()
	csID, stackID, err := e.CreateChangeSet(ctx, ChangeSetInput{StackInput: StackInput{StackName: "cs", TemplateBody: twoThings}, ChangeSetName: "c1", ChangeSetType: "CREATE"})
	if err != nil {
		t.Fatal(err)
	}
	ss, _, _ := e.DescribeStacks(ctx, "cs", "")
	if ss[0].Status != ReviewInProgress {
		t.Fatalf("status %s", ss[0].Status)
	}
	c, err := e.DescribeChangeSet(ctx, "c1", "cs")
	if err != nil || c.Status != csCreateComplete || len(c.Changes) != 2 || c.Changes[0].Action != "Add" {
		t.Fatalf("change set %+v %v", c, err)
	}
	if _, err := e.ExecuteChangeSet(ctx, csID, "", "", false); err != nil {
		t.Fatal(err)
	}
	if st := waitDone(t, e, stackID); st != CreateComplete {
		t.Fatalf("status %s", st)
	}
	if c, _ := e.DescribeChangeSet(ctx, csID, ""); c.ExecutionStatus != execComplete {
		t.Fatalf("exec status %s", c.ExecutionStatus)
	}
	// An update change set with no change fails with CloudFormation's reason.
	id2, _, err := e.CreateChangeSet(ctx, ChangeSetInput{StackInput: StackInput{StackName: "cs", TemplateBody: twoThings}, ChangeSetName: "c2"})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := e.DescribeChangeSet(ctx, id2, ""); c.Status != csFailed || c.Reason != noChangesReason {
		t.Fatalf("empty change set %+v", c)
	}
	body := strings.Replace(twoThings, "Size: 1", "Size: 5", 1)
	id3, _, err := e.CreateChangeSet(ctx, ChangeSetInput{StackInput: StackInput{StackName: "cs", TemplateBody: body}, ChangeSetName: "c3"})
	if err != nil {
		t.Fatal(err)
	}
	c3, _ := e.DescribeChangeSet(ctx, id3, "")
	if len(c3.Changes) != 2 || c3.Changes[0].Replacement != "True" || c3.Changes[1].Replacement != "False" || c3.Changes[1].Details[0].Evaluation != "Dynamic" {
		t.Fatalf("changes %+v", c3.Changes)
	}
	if err := e.DeleteChangeSet(ctx, "c3", "cs"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.DescribeChangeSet(ctx, id3, ""); err == nil {
		t.Fatal("deleted change set still described")
	}
}

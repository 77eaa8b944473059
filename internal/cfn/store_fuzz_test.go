package cfn

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/testkit"
)

// FuzzStoredRecords: the engine opens over its stored records (stacks,
// with the template and the operation under way they hold; events;
// change sets) read back from disk, one of them damaged. Open refuses it
// or loads it; what loads is described, its resumed operation runs, and
// the engine closes, without a panic or a hang.
func FuzzStoredRecords(f *testing.F) {
	base := storedSeedState(f)
	if err := kv.Scan(base, []byte{'o'}, []byte{'p'}, func(k, v []byte) error {
		f.Add(bytes.Clone(k[1:]), bytes.Clone(v))
		return nil
	}); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("sarn:x"), []byte(`{"id":"arn:x","name":"x","status":"CREATE_IN_PROGRESS","template":"Resources: !Ref x","op":{"kind":"CREATE_STACK","phase":"apply"}}`))
	f.Add([]byte("sarn:y"), []byte(`{"id":"arn:y","name":"y","status":"UPDATE_IN_PROGRESS","resources":{"A":null},"op":{"kind":"UPDATE_STACK","phase":"rollback","prev":{"A":null},"retired":[null]}}`))
	f.Add([]byte("sarn:z"), []byte(`{"id":"arn:z","name":"z","status":"DELETE_IN_PROGRESS","op":{"kind":"DELETE_STACK","phase":"nonsense"}}`))
	f.Add([]byte("cx"), []byte(`{"id":"x","stack":"arn:none","changes":[{"action":"Modify","details":[{}]}]}`))

	f.Fuzz(func(t *testing.T, key, val []byte) {
		store := base.CrashClone()
		b := store.NewBatch()
		b.Set(append([]byte{'o'}, key...), val)
		if err := b.Commit(true); err != nil {
			t.Fatal(err)
		}
		b.Close()
		e, err := Open(Options{Region: "us-east-1", AccountID: "123456789012", KV: store, Types: testTypes(newFake()),
			AZs: func(string) []string { return []string{"us-east-1a"} }})
		if err != nil {
			return // refused
		}
		defer e.Close()
		ctx := t.Context()
		ss, _, _ := e.ListStacks(ctx, nil, "")
		for _, s := range ss {
			e.Wait(ctx, s.ID, 500*time.Millisecond)
			_, _, _ = e.DescribeStacks(ctx, s.ID, "")
			_, _, _ = e.DescribeStackEvents(ctx, s.ID, "")
			_, _ = e.DescribeStackResources(ctx, s.ID, "", "")
			_, _, _ = e.ListStackResources(ctx, s.ID, "")
			_, _ = e.GetTemplate(ctx, s.ID, "")
			_, _, _ = e.ListImports(ctx, s.Name, "")
			css, _, _ := e.ListChangeSets(ctx, s.ID, "")
			for _, c := range css {
				_, _ = e.DescribeChangeSet(ctx, c.ID, "")
				_, _ = e.GetTemplate(ctx, s.ID, c.ID)
			}
		}
		_, _, _ = e.DescribeStacks(ctx, "", "")
		_, _, _ = e.ListExports(ctx, "")
		// What loaded can be changed: every live stack deleted.
		for _, s := range ss {
			if s.Status != DeleteComplete && !strings.HasSuffix(s.Status, "IN_PROGRESS") {
				_ = e.DeleteStack(ctx, s.ID, nil, "")
				e.Wait(ctx, s.ID, 500*time.Millisecond)
			}
		}
	})
}

// storedSeedState is a store as the engine leaves it: a stack created
// (with an export), one updated into a replacement and stopped in its
// cleanup, one stopped while it created its first resource, and a change
// set.
func storedSeedState(f *testing.F) *kv.Memory {
	store := kv.NewMemory()
	p := newFake()
	e, err := Open(Options{Region: "us-east-1", AccountID: "123456789012", KV: store, Types: testTypes(p)})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	ctx := f.Context()
	done, err := e.CreateStack(ctx, StackInput{StackName: "done", TemplateBody: twoThings, ClientRequestToken: "tok-1",
		Tags: []Tag{{Key: "k", Value: "v"}}})
	if err != nil {
		f.Fatal(err)
	}
	if st := e.Wait(ctx, done, 10*time.Second); st != CreateComplete {
		f.Fatalf("seed stack %s", st)
	}
	if _, _, err := e.CreateChangeSet(ctx, ChangeSetInput{StackInput: StackInput{StackName: "done",
		TemplateBody: strings.Replace(twoThings, "Size: 1", "Size: 5", 1)}, ChangeSetName: "c1"}); err != nil {
		f.Fatal(err)
	}
	p.mu.Lock()
	p.block = make(chan struct{})
	p.mu.Unlock()
	if _, err := e.UpdateStack(ctx, StackInput{StackName: "done", TemplateBody: strings.Replace(twoThings, "Size: 1", "Size: 2", 1)}); err != nil {
		f.Fatal(err)
	}
	if _, err := e.CreateStack(ctx, StackInput{StackName: "stopped", TemplateBody: twoThings}); err != nil {
		f.Fatal(err)
	}
	// Both operations wait in the provider (a creation each): stopped
	// there, as by a restart.
	if !testkit.Until(10*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.n >= 4
	}) {
		f.Fatal("the seed operations never reached the provider")
	}
	return store
}

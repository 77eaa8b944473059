package cfn

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/regionfs/regionfs/internal/pagetoken"
)

// Stack describes a stack (DescribeStacks).
type Stack struct {
	ID, Name, ChangeSetID, Description string
	Parameters                         []ParamValue
	Created, LastUpdated, Deleted      time.Time
	Status, StatusReason               string
	DisableRollback                    bool
	NotificationARNs, Capabilities     []string
	Outputs                            []Output
	RoleARN                            string
	Tags                               []Tag
	TimeoutMinutes                     int
	TerminationProtection              bool
	LastOperationID, LastOperationType string
}

func (e *Engine) describeLocked(s *stackRecord) Stack {
	d := Stack{
		ID: s.ID, Name: s.Name, ChangeSetID: s.ChangeSetID, Description: s.Description,
		Created: s.Created, LastUpdated: s.Updated, Deleted: s.Deleted, Status: s.Status, StatusReason: s.Reason,
		DisableRollback: s.DisableRollback, NotificationARNs: slices.Clone(s.NotificationARNs), Capabilities: slices.Clone(s.Capabilities),
		Outputs: slices.Clone(s.Outputs), RoleARN: s.RoleARN, Tags: slices.Clone(s.Tags), TimeoutMinutes: s.TimeoutMinutes,
		TerminationProtection: s.TerminationProtection, LastOperationID: s.LastOpID, LastOperationType: s.LastOp,
	}
	for _, p := range s.Params {
		if p.NoEcho {
			p.Value = "****"
		}
		d.Parameters = append(d.Parameters, p)
	}
	return d
}

// pageSize of listings.
const pageSize = 100

// tokenKind is the kind of the listings' NextTokens (package pagetoken).
const tokenKind byte = 'c'

// page returns items[from:from+n] and the next token.
func page[T any](items []T, token string, n int) ([]T, string, error) {
	from := 0
	if token != "" {
		v, ok := pagetoken.DecodeIndex(tokenKind, token, len(items))
		if !ok {
			return nil, "", validation("Invalid NextToken: %s", clip(token))
		}
		from = v
	}
	to := min(len(items), from+n)
	next := ""
	if to < len(items) {
		next = pagetoken.EncodeIndex(tokenKind, to)
	}
	return items[from:to], next, nil
}

// DescribeStacks describes one stack (by name: live ones; by id: deleted
// ones too) or every live stack.
func (e *Engine) DescribeStacks(_ context.Context, name, token string) ([]Stack, string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if name != "" {
		s, err := e.lookupLocked(name)
		if err != nil {
			return nil, "", err
		}
		return []Stack{e.describeLocked(s)}, "", nil
	}
	return e.describePageLocked(func(s *stackRecord) bool { return s.Status != DeleteComplete }, token)
}

// ListStacks lists stacks (deleted ones too, for 90 days), optionally
// only those in the given statuses.
func (e *Engine) ListStacks(_ context.Context, statuses []string, token string) ([]Stack, string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.purgeExpiredLocked()
	return e.describePageLocked(func(s *stackRecord) bool { return len(statuses) == 0 || slices.Contains(statuses, s.Status) }, token)
}

// describePageLocked describes the page at token of the stacks keep
// takes, newest first.
func (e *Engine) describePageLocked(keep func(*stackRecord) bool, token string) ([]Stack, string, error) {
	var all []*stackRecord
	for _, s := range e.stacks {
		if keep(s) {
			all = append(all, s)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Created.After(all[j].Created) })
	p, next, err := page(all, token, pageSize)
	if err != nil {
		return nil, "", err
	}
	out := make([]Stack, len(p))
	for i, s := range p {
		out[i] = e.describeLocked(s)
	}
	return out, next, nil
}

// Event is a stack event.
type Event struct {
	ID, StackID, StackName, LogicalID, PhysicalID, Type string
	Time                                                time.Time
	Status, Reason, Properties, ClientRequestToken      string
	OperationID                                         string
}

// DescribeStackEvents returns a stack's events, newest first.
func (e *Engine) DescribeStackEvents(_ context.Context, name, token string) ([]Event, string, error) {
	e.mu.Lock()
	s, err := e.lookupLocked(name)
	e.mu.Unlock()
	if err != nil {
		return nil, "", err
	}
	evs, err := e.events(s.ID)
	if err != nil {
		return nil, "", err
	}
	p, next, err := page(evs, token, pageSize)
	if err != nil {
		return nil, "", err
	}
	out := make([]Event, len(p))
	for i, ev := range p {
		out[i] = Event{ID: ev.ID, StackID: ev.StackID, StackName: ev.StackName, LogicalID: ev.LogicalID, PhysicalID: ev.PhysicalID,
			Type: ev.Type, Time: ev.Time, Status: ev.Status, Reason: ev.Reason, Properties: ev.Props, ClientRequestToken: ev.Token, OperationID: ev.OpID}
	}
	return out, next, nil
}

// Resource describes a resource of a stack.
type Resource struct {
	StackID, StackName, LogicalID, PhysicalID, Type string
	Updated                                         time.Time
	Status, Reason                                  string
	Metadata                                        string
}

func describeResource(s *stackRecord, r *resourceState) Resource {
	d := Resource{StackID: s.ID, StackName: s.Name, LogicalID: r.LogicalID, PhysicalID: r.PhysicalID, Type: r.Type,
		Updated: r.Updated, Status: r.Status, Reason: r.Reason}
	if r.Metadata != nil {
		d.Metadata = marshalJSON(r.Metadata)
	}
	return d
}

// DescribeStackResources returns the resources of a stack (by stack name),
// or the stack holding a physical resource and its resources.
func (e *Engine) DescribeStackResources(_ context.Context, stackName, logicalID, physicalID string) ([]Resource, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s *stackRecord
	switch {
	case stackName != "":
		var err error
		if s, err = e.lookupLocked(stackName); err != nil {
			return nil, err
		}
	case physicalID != "":
		for _, c := range e.stacks {
			for _, r := range c.Resources {
				if r.PhysicalID == physicalID && c.Status != DeleteComplete {
					s = c
				}
			}
		}
		if s == nil {
			return nil, validation("Stack for %s does not exist", clip(physicalID))
		}
	default:
		return nil, validation("Either StackName or PhysicalResourceId must be specified.")
	}
	var out []Resource
	for _, id := range sortedKeys(s.Resources) {
		r := s.Resources[id]
		if logicalID != "" && id != logicalID {
			continue
		}
		if physicalID != "" && stackName == "" && logicalID == "" && false {
			continue
		}
		out = append(out, describeResource(s, r))
	}
	return out, nil
}

// DescribeStackResource describes one resource of a stack.
func (e *Engine) DescribeStackResource(_ context.Context, stackName, logicalID string) (Resource, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.lookupLocked(stackName)
	if err != nil {
		return Resource{}, err
	}
	r := s.Resources[logicalID]
	if r == nil {
		return Resource{}, validation("Resource %s does not exist for stack %s", clip(logicalID), s.Name)
	}
	return describeResource(s, r), nil
}

// ListStackResources lists a stack's resources.
func (e *Engine) ListStackResources(ctx context.Context, stackName, token string) ([]Resource, string, error) {
	rs, err := e.DescribeStackResources(ctx, stackName, "", "")
	if err != nil {
		return nil, "", err
	}
	return page(rs, token, pageSize)
}

// GetTemplate returns a stack's template (or a change set's).
func (e *Engine) GetTemplate(_ context.Context, stackName, changeSet string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if changeSet != "" {
		c, err := e.changeSetLocked(changeSet, stackName)
		if err != nil {
			return "", err
		}
		return c.Template, nil
	}
	s, err := e.lookupLocked(stackName)
	if err != nil {
		return "", err
	}
	return s.Template, nil
}

// Summary is GetTemplateSummary's answer.
type Summary struct {
	T             *Template
	ResourceTypes []string
	// Previous holds a stack's parameter values (by key), for
	// UsePreviousValue.
	Previous map[string]string
}

// GetTemplateSummary summarizes a template, or a stack's template.
func (e *Engine) GetTemplateSummary(_ context.Context, body, stackName string) (Summary, error) {
	if (body == "") == (stackName == "") {
		return Summary{}, validation("Either Template URL, Template Body, StackName or StackSetName must be specified.")
	}
	if stackName != "" {
		e.mu.Lock()
		s, err := e.lookupLocked(stackName)
		if err == nil {
			body = s.Template
		}
		e.mu.Unlock()
		if err != nil {
			return Summary{}, err
		}
		if body == "" {
			return Summary{}, validation("Stack %s has no template yet", clip(stackName))
		}
	}
	t, err := e.ValidateTemplate(body)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{T: t}
	for _, id := range t.ResourceIDs {
		if !slices.Contains(sum.ResourceTypes, t.Resources[id].Type) {
			sum.ResourceTypes = append(sum.ResourceTypes, t.Resources[id].Type)
		}
	}
	return sum, nil
}

// Export is an exported output.
type Export struct {
	StackID, Name, Value string
}

// ListExports lists the exports of the region's live stacks.
func (e *Engine) ListExports(_ context.Context, token string) ([]Export, string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var all []Export
	for _, s := range e.stacks {
		if s.Status == DeleteComplete {
			continue
		}
		for _, o := range s.Outputs {
			if o.ExportName != "" {
				all = append(all, Export{StackID: s.ID, Name: o.ExportName, Value: o.Value})
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return page(all, token, pageSize)
}

// ListImports lists the stacks that import an export.
func (e *Engine) ListImports(_ context.Context, name, token string) ([]string, string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	found := false
	var users []string
	for _, s := range e.stacks {
		if s.Status == DeleteComplete {
			continue
		}
		for _, o := range s.Outputs {
			found = found || o.ExportName == name
		}
		if slices.Contains(s.ImportNames, name) {
			users = append(users, s.Name)
		}
	}
	if !found {
		return nil, "", validation("Export '%s' does not exist.", clip(name))
	}
	if len(users) == 0 {
		return nil, "", validation("Export '%s' is not imported by any stack.", clip(name))
	}
	sort.Strings(users)
	return page(users, token, pageSize)
}

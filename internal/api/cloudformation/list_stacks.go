package cloudformation

import (
	"context"
	"encoding/xml"
	"slices"

	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/cfn"
)

type stackSummaryXML struct {
	StackID             string   `xml:"StackId"`
	StackName           string   `xml:"StackName"`
	TemplateDescription string   `xml:"TemplateDescription,omitempty"`
	CreationTime        string   `xml:"CreationTime"`
	LastUpdatedTime     string   `xml:"LastUpdatedTime,omitempty"`
	DeletionTime        string   `xml:"DeletionTime,omitempty"`
	StackStatus         string   `xml:"StackStatus"`
	StackStatusReason   string   `xml:"StackStatusReason,omitempty"`
	DriftInformation    driftXML `xml:"DriftInformation"`
}

type listStacksResult struct {
	XMLName        xml.Name          `xml:"ListStacksResult"`
	StackSummaries []stackSummaryXML `xml:"StackSummaries>member"`
	NextToken      string            `xml:"NextToken,omitempty"`
}

var stackStatuses = []string{
	cfn.CreateInProgress, cfn.CreateFailed, cfn.CreateComplete, cfn.RollbackInProgress, cfn.RollbackFailed, cfn.RollbackComplete,
	cfn.DeleteInProgress, cfn.DeleteFailed, cfn.DeleteComplete, cfn.UpdateInProgress, cfn.UpdateCompleteCleanupInProgress,
	cfn.UpdateComplete, cfn.UpdateFailed, cfn.UpdateRollbackInProgress, cfn.UpdateRollbackFailed,
	cfn.UpdateRollbackCompleteCleanupInProgress, cfn.UpdateRollbackComplete, cfn.ReviewInProgress,
	"IMPORT_IN_PROGRESS", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_IN_PROGRESS", "IMPORT_ROLLBACK_FAILED", "IMPORT_ROLLBACK_COMPLETE",
}

func (h *Handler) listStacks(ctx context.Context, p params) (any, error) {
	filter, _, err := p.list("StackStatusFilter")
	if err != nil {
		return nil, err
	}
	for _, f := range filter {
		if !slices.Contains(stackStatuses, f) {
			return nil, validationf("1 validation error detected: Value '[%s]' at 'stackStatusFilter' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [%s]]", awsproto.Clip(f), "CREATE_IN_PROGRESS, CREATE_FAILED, CREATE_COMPLETE, …")
		}
	}
	ss, next, err := h.e.ListStacks(ctx, filter, p.get("NextToken"))
	if err != nil {
		return nil, err
	}
	r := listStacksResult{NextToken: next, StackSummaries: []stackSummaryXML{}}
	for _, s := range ss {
		r.StackSummaries = append(r.StackSummaries, stackSummaryXML{
			StackID: s.ID, StackName: s.Name, TemplateDescription: s.Description, CreationTime: ts(s.Created),
			LastUpdatedTime: optTS(s.LastUpdated), DeletionTime: optTS(s.Deleted), StackStatus: s.Status,
			StackStatusReason: s.StatusReason, DriftInformation: driftXML{"NOT_CHECKED"},
		})
	}
	return r, nil
}

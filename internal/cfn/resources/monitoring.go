package resources

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/regionfs/regionfs/internal/cfn"
	"github.com/regionfs/regionfs/internal/monitor"
	"github.com/regionfs/regionfs/internal/monitor/notify"
)

// Alarms is the region's CloudWatch alarms (package monitor).
type Alarms = *monitor.Monitor

// Topics is the region's SNS topics (package notify).
type Topics = *notify.Service

// monitoringTypes are AWS::SNS::Topic, AWS::SNS::Subscription,
// AWS::CloudWatch::Alarm, AWS::CloudWatch::CompositeAlarm and
// AWS::CloudWatch::Dashboard: a replication's lag alarm, the composite
// that combines it with the source's health, where they notify and the
// dashboard that shows them, declared with the file system.
func monitoringTypes(o Options) []*cfn.ResourceType {
	var out []*cfn.ResourceType
	if o.Topics != nil {
		sub := obj(map[string]*cfn.Prop{"Endpoint": req(p(cfn.String)), "Protocol": req(p(cfn.String))})
		out = append(out,
			&cfn.ResourceType{
				Name:       "AWS::SNS::Topic",
				Attributes: []string{"TopicArn", "TopicName"},
				Properties: map[string]*cfn.Prop{
					"TopicName":    replace(pattern(`^[A-Za-z0-9_-]{1,256}$`, 1, 256)),
					"DisplayName":  &cfn.Prop{Kind: cfn.String, MaxLen: 100},
					"Subscription": listOf(sub),
					// SNS here has no tagging call: new tags make a new topic.
					"Tags": replace(tagList()),
				},
				Provider: &snsTopics{o},
			},
			&cfn.ResourceType{
				Name: "AWS::SNS::Subscription",
				Properties: map[string]*cfn.Prop{
					"TopicArn": req(replace(p(cfn.String))),
					"Protocol": req(replace(p(cfn.String))),
					"Endpoint": replace(p(cfn.String)),
				},
				Provider: &snsSubscriptions{o},
			})
	}
	if o.Alarms != nil {
		dims := listOf(obj(map[string]*cfn.Prop{"Name": req(p(cfn.String)), "Value": req(p(cfn.String))}))
		metric := obj(map[string]*cfn.Prop{"MetricName": p(cfn.String), "Namespace": p(cfn.String), "Dimensions": dims})
		query := obj(map[string]*cfn.Prop{
			"Id": req(p(cfn.String)), "Expression": p(cfn.String), "Label": p(cfn.String), "ReturnData": p(cfn.Boolean), "Period": p(cfn.Integer),
			"AccountId":  p(cfn.String),
			"MetricStat": obj(map[string]*cfn.Prop{"Metric": req(metric), "Period": req(p(cfn.Integer)), "Stat": req(p(cfn.String)), "Unit": p(cfn.String)}),
		})
		out = append(out, &cfn.ResourceType{
			Name:       "AWS::CloudWatch::Alarm",
			Attributes: []string{"Arn"},
			Properties: map[string]*cfn.Prop{
				"AlarmName":                        replace(&cfn.Prop{Kind: cfn.String, MinLen: 1, MaxLen: 255}),
				"AlarmDescription":                 &cfn.Prop{Kind: cfn.String, MaxLen: 1024},
				"ActionsEnabled":                   p(cfn.Boolean),
				"AlarmActions":                     listOf(p(cfn.String)),
				"OKActions":                        listOf(p(cfn.String)),
				"InsufficientDataActions":          listOf(p(cfn.String)),
				"MetricName":                       p(cfn.String),
				"Namespace":                        p(cfn.String),
				"Dimensions":                       dims,
				"Statistic":                        p(cfn.String),
				"ExtendedStatistic":                p(cfn.String),
				"Period":                           p(cfn.Integer),
				"Unit":                             p(cfn.String),
				"EvaluationPeriods":                req(p(cfn.Integer)),
				"DatapointsToAlarm":                p(cfn.Integer),
				"Threshold":                        p(cfn.Number),
				"ThresholdMetricId":                p(cfn.String),
				"ComparisonOperator":               req(p(cfn.String)),
				"TreatMissingData":                 p(cfn.String),
				"EvaluateLowSampleCountPercentile": p(cfn.String),
				"Metrics":                          listOf(query),
				"Tags":                             tagList(),
			},
			Provider: &cwAlarms{o},
		},
			&cfn.ResourceType{
				Name:       "AWS::CloudWatch::CompositeAlarm",
				Attributes: []string{"Arn"},
				Properties: map[string]*cfn.Prop{
					"AlarmName":                        replace(&cfn.Prop{Kind: cfn.String, MinLen: 1, MaxLen: 255}),
					"AlarmRule":                        req(&cfn.Prop{Kind: cfn.String, MinLen: 1, MaxLen: monitor.MaxRuleLength}),
					"AlarmDescription":                 &cfn.Prop{Kind: cfn.String, MaxLen: 1024},
					"ActionsEnabled":                   p(cfn.Boolean),
					"AlarmActions":                     listOf(p(cfn.String)),
					"OKActions":                        listOf(p(cfn.String)),
					"InsufficientDataActions":          listOf(p(cfn.String)),
					"ActionsSuppressor":                p(cfn.String),
					"ActionsSuppressorWaitPeriod":      p(cfn.Integer),
					"ActionsSuppressorExtensionPeriod": p(cfn.Integer),
					"Tags":                             tagList(),
				},
				Provider: &cwComposites{o},
			},
			&cfn.ResourceType{
				Name: "AWS::CloudWatch::Dashboard",
				Properties: map[string]*cfn.Prop{
					"DashboardName": replace(pattern(`^[A-Za-z0-9_-]{1,255}$`, 1, 255)),
					"DashboardBody": req(p(cfn.String)),
				},
				Provider: &cwDashboards{o},
			})
	}
	return out
}

// generatedName is the name CloudFormation gives a resource whose name
// property is absent: stack, logical id and a part of the token.
func generatedName(r *cfn.Request, max int) string {
	name := fmt.Sprintf("%s-%s-%s", r.StackName, r.LogicalID, strings.ToUpper(r.Token[len(r.Token)-12:]))
	if len(name) > max {
		name = name[len(name)-max:]
	}
	return name
}

// stackTags are the tags CloudFormation puts on what a stack makes
// (aws:cloudformation:stack-name, stack-id, logical-id). A resource of an
// explicit name that has them is the stack's own, made by an attempt that
// a crash cut short; one without them is someone else's, and the create
// fails (alreadyExists) rather than adopt it and delete it with the stack.
func stackTags(r *cfn.Request) [][2]string {
	return [][2]string{{"aws:cloudformation:stack-name", r.StackName}, {"aws:cloudformation:stack-id", r.StackID}, {"aws:cloudformation:logical-id", r.LogicalID}}
}

// alreadyExists is CloudFormation's failure of a create that found the
// named resource made by someone else.
func alreadyExists(typ, id string) error {
	return &cfn.HandlerError{Code: "AlreadyExists", Message: fmt.Sprintf("Resource of type '%s' with identifier '%s' already exists.", typ, id)}
}

// notFound is CloudFormation's failure of an update (or read) of a
// resource deleted out of band: the handler does not re-create it.
func notFound(typ, id string) error {
	return &cfn.HandlerError{Code: "NotFound", Message: fmt.Sprintf("Resource of type '%s' with identifier '%s' was not found.", typ, id)}
}

type snsTopics struct{ o Options }

func (s *snsTopics) Create(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	name := str(r.Props, "TopicName")
	if name == "" {
		name = generatedName(r, 256)
	}
	attrs := map[string]string{}
	if d := str(r.Props, "DisplayName"); d != "" {
		attrs["DisplayName"] = d
	}
	var tags []notify.Tag
	for _, t := range tagsOf(r.Props, "Tags") {
		tags = append(tags, notify.Tag{Key: t[0], Value: t[1]})
	}
	var mine []notify.Tag
	for _, t := range stackTags(r) {
		mine = append(mine, notify.Tag{Key: t[0], Value: t[1]})
	}
	arn, err := s.o.Topics.CreateTopicAs(ctx, name, attrs, tags, mine)
	if errors.Is(err, notify.ErrAlreadyExists) {
		return cfn.Outcome{}, alreadyExists("AWS::SNS::Topic", s.o.Topics.TopicARN(name))
	}
	if err != nil {
		return cfn.Outcome{}, handlerError(err)
	}
	if r.Started != nil {
		r.Started(arn)
	}
	out := cfn.Outcome{PhysicalID: arn, Attributes: map[string]string{"TopicArn": arn, "TopicName": name}}
	if err := s.subscribe(ctx, arn, nil, r.Props); err != nil {
		return cfn.Outcome{}, err
	}
	return out, nil
}

// subscribe adds the Subscription entries of pr that old lacks and
// removes those old had and pr has not.
func (s *snsTopics) subscribe(ctx context.Context, arn string, old, pr map[string]any) error {
	key := func(v any) [2]string {
		m, _ := v.(map[string]any)
		return [2]string{str(m, "Protocol"), str(m, "Endpoint")}
	}
	had, want := map[[2]string]bool{}, map[[2]string]bool{}
	for _, v := range list(old, "Subscription") {
		had[key(v)] = true
	}
	for _, v := range list(pr, "Subscription") {
		k := key(v)
		want[k] = true
		if !had[k] {
			if _, err := s.o.Topics.Subscribe(ctx, arn, k[0], k[1], nil, true); err != nil {
				return handlerError(err)
			}
		}
	}
	for k := range had {
		if want[k] {
			continue
		}
		if sub, ok := s.o.Topics.SubscriptionARN(arn, k[0], k[1]); ok {
			if err := s.o.Topics.Unsubscribe(ctx, sub, true); err != nil && !errors.Is(err, notify.ErrNotFound) {
				return handlerError(err)
			}
		}
	}
	return nil
}

// Update changes the topic in place; one deleted out of band is
// NotFound, as on AWS (a subscribe must not fail later on a half-made
// update, nor a create-by-name make it again).
func (s *snsTopics) Update(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	arn := r.PhysicalID
	if _, err := s.o.Topics.GetTopicAttributes(ctx, arn); errors.Is(err, notify.ErrNotFound) {
		return cfn.Outcome{}, notFound("AWS::SNS::Topic", arn)
	} else if err != nil {
		return cfn.Outcome{}, handlerError(err)
	}
	if d := str(r.Props, "DisplayName"); d != str(r.OldProps, "DisplayName") {
		if err := s.o.Topics.SetTopicAttributes(ctx, arn, "DisplayName", d); err != nil {
			return cfn.Outcome{}, handlerError(err)
		}
	}
	if err := s.subscribe(ctx, arn, r.OldProps, r.Props); err != nil {
		return cfn.Outcome{}, err
	}
	return cfn.Outcome{PhysicalID: arn, Attributes: r.Attributes}, nil
}

// Delete deletes the topic and its subscriptions (a topic already gone
// is success).
func (s *snsTopics) Delete(ctx context.Context, r *cfn.Request) error {
	return handlerError(s.o.Topics.DeleteTopic(ctx, r.PhysicalID))
}

type snsSubscriptions struct{ o Options }

func (s *snsSubscriptions) Create(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	arn, err := s.o.Topics.Subscribe(ctx, str(r.Props, "TopicArn"), str(r.Props, "Protocol"), str(r.Props, "Endpoint"), nil, true)
	if err != nil {
		return cfn.Outcome{}, handlerError(err)
	}
	return cfn.Outcome{PhysicalID: arn}, nil
}

// Update has nothing to do: every property replaces the subscription.
func (s *snsSubscriptions) Update(_ context.Context, r *cfn.Request) (cfn.Outcome, error) {
	return cfn.Outcome{PhysicalID: r.PhysicalID, Attributes: r.Attributes}, nil
}

func (s *snsSubscriptions) Delete(ctx context.Context, r *cfn.Request) error {
	if err := s.o.Topics.Unsubscribe(ctx, r.PhysicalID, true); err != nil && !errors.Is(err, notify.ErrNotFound) {
		return handlerError(err)
	}
	return nil
}

type cwAlarms struct{ o Options }

// input is the alarm a template declares.
func (a *cwAlarms) input(name string, pr map[string]any) monitor.AlarmInput {
	in := monitor.AlarmInput{
		Name: name, Description: str(pr, "AlarmDescription"),
		AlarmActions: strings_(pr, "AlarmActions"), OKActions: strings_(pr, "OKActions"), InsufficientDataActions: strings_(pr, "InsufficientDataActions"),
		Metric:    monitor.Metric{Namespace: str(pr, "Namespace"), Name: str(pr, "MetricName"), Dimensions: dimensionsOf(pr)},
		Statistic: str(pr, "Statistic"), ExtendedStatistic: str(pr, "ExtendedStatistic"), Unit: str(pr, "Unit"),
		ComparisonOperator: str(pr, "ComparisonOperator"), TreatMissingData: str(pr, "TreatMissingData"),
		EvaluateLowSampleCountPercentile: str(pr, "EvaluateLowSampleCountPercentile"), ThresholdMetricID: str(pr, "ThresholdMetricId"),
	}
	if has(pr, "ActionsEnabled") {
		b := boolean(pr, "ActionsEnabled")
		in.ActionsEnabled = &b
	}
	if v, ok := number(pr, "Period"); ok {
		in.Period = int64(v)
	}
	if v, ok := number(pr, "EvaluationPeriods"); ok {
		in.EvaluationPeriods = int(v)
	}
	if v, ok := number(pr, "DatapointsToAlarm"); ok {
		in.DatapointsToAlarm = int(v)
	}
	if v, ok := number(pr, "Threshold"); ok {
		in.Threshold = &v
	}
	for _, q := range list(pr, "Metrics") {
		m, _ := q.(map[string]any)
		mq := monitor.MetricQuery{ID: str(m, "Id"), Label: str(m, "Label"), Expression: str(m, "Expression")}
		if has(m, "ReturnData") {
			b := boolean(m, "ReturnData")
			mq.ReturnData = &b
		}
		if v, ok := number(m, "Period"); ok {
			mq.Period = int64(v)
		}
		if st := object(m, "MetricStat"); st != nil {
			mt := object(st, "Metric")
			ms := &monitor.MetricStat{Metric: monitor.Metric{Namespace: str(mt, "Namespace"), Name: str(mt, "MetricName"), Dimensions: dimensionsOf(mt)},
				Stat: str(st, "Stat"), Unit: str(st, "Unit")}
			if v, ok := number(st, "Period"); ok {
				ms.Period = int64(v)
			}
			mq.Stat = ms
		}
		in.Metrics = append(in.Metrics, mq)
	}
	for _, t := range tagsOf(pr, "Tags") {
		in.Tags = append(in.Tags, monitor.Tag{Key: t[0], Value: t[1]})
	}
	return in
}

func dimensionsOf(pr map[string]any) []monitor.Dimension {
	var out []monitor.Dimension
	for _, v := range list(pr, "Dimensions") {
		m, _ := v.(map[string]any)
		out = append(out, monitor.Dimension{Name: str(m, "Name"), Value: str(m, "Value")})
	}
	return out
}

// put puts the alarm; with createdBy set only when no other's alarm has
// the name (AlarmInput.CreatedBy).
func (a *cwAlarms) put(ctx context.Context, name string, pr map[string]any, createdBy []monitor.Tag) (cfn.Outcome, error) {
	in := a.input(name, pr)
	in.CreatedBy = createdBy
	return alarmPut(a.o.Alarms, "AWS::CloudWatch::Alarm", name, a.o.Alarms.PutMetricAlarm(ctx, in))
}

func (a *cwAlarms) Create(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	name := str(r.Props, "AlarmName")
	if name == "" {
		name = generatedName(r, 255)
	}
	return a.put(ctx, name, r.Props, monitorTags(stackTags(r)))
}

// Update puts the alarm again (PutMetricAlarm replaces its definition
// but keeps an existing alarm's tags, as on AWS) and then tags it: new and
// changed tags are set, those it no longer declares removed. An alarm
// deleted out of band is NotFound, as on AWS: the put would re-create it.
func (a *cwAlarms) Update(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	l, err := a.o.Alarms.DescribeAlarms(ctx, monitor.AlarmFilter{Names: []string{r.PhysicalID}})
	if err != nil {
		return cfn.Outcome{}, handlerError(err)
	}
	if len(l.Metric) == 0 {
		return cfn.Outcome{}, notFound("AWS::CloudWatch::Alarm", r.PhysicalID)
	}
	out, err := a.put(ctx, r.PhysicalID, r.Props, nil)
	if err != nil {
		return out, err
	}
	if err := retagAlarm(ctx, a.o.Alarms, out.Attributes["Arn"], r.OldProps, r.Props); err != nil {
		return cfn.Outcome{}, err
	}
	return out, nil
}

func (a *cwAlarms) Delete(ctx context.Context, r *cfn.Request) error {
	return deleteAlarm(ctx, a.o.Alarms, r.PhysicalID)
}

type cwComposites struct{ o Options }

// input is the composite alarm a template declares.
func (a *cwComposites) input(name string, pr map[string]any) monitor.CompositeInput {
	in := monitor.CompositeInput{
		Name: name, Description: str(pr, "AlarmDescription"), Rule: str(pr, "AlarmRule"),
		AlarmActions: strings_(pr, "AlarmActions"), OKActions: strings_(pr, "OKActions"), InsufficientDataActions: strings_(pr, "InsufficientDataActions"),
		ActionsSuppressor: str(pr, "ActionsSuppressor"),
	}
	if has(pr, "ActionsEnabled") {
		b := boolean(pr, "ActionsEnabled")
		in.ActionsEnabled = &b
	}
	if v, ok := number(pr, "ActionsSuppressorWaitPeriod"); ok {
		n := int(v)
		in.SuppressorWaitPeriod = &n
	}
	if v, ok := number(pr, "ActionsSuppressorExtensionPeriod"); ok {
		n := int(v)
		in.SuppressorExtensionPeriod = &n
	}
	for _, t := range tagsOf(pr, "Tags") {
		in.Tags = append(in.Tags, monitor.Tag{Key: t[0], Value: t[1]})
	}
	return in
}

// put puts the composite alarm; with createdBy set only when no other's
// alarm has the name (CompositeInput.CreatedBy).
func (a *cwComposites) put(ctx context.Context, name string, pr map[string]any, createdBy []monitor.Tag) (cfn.Outcome, error) {
	in := a.input(name, pr)
	in.CreatedBy = createdBy
	return alarmPut(a.o.Alarms, "AWS::CloudWatch::CompositeAlarm", name, a.o.Alarms.PutCompositeAlarm(ctx, in))
}

// alarmPut is the outcome of putting alarm name of resource type typ
// (metric or composite): its name and ARN, or the put's error as the
// handler reports it (AlreadyExists for another's alarm of the name).
func alarmPut(alarms *monitor.Monitor, typ, name string, err error) (cfn.Outcome, error) {
	if errors.Is(err, monitor.ErrAlreadyExists) {
		return cfn.Outcome{}, alreadyExists(typ, name)
	}
	if err != nil {
		return cfn.Outcome{}, handlerError(err)
	}
	return cfn.Outcome{PhysicalID: name, Attributes: map[string]string{"Arn": alarms.AlarmARN(name)}}, nil
}

func (a *cwComposites) Create(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	name := str(r.Props, "AlarmName")
	if name == "" {
		name = generatedName(r, 255)
	}
	return a.put(ctx, name, r.Props, monitorTags(stackTags(r)))
}

// Update puts the composite alarm again (its rule is evaluated at once)
// and applies the tag changes, as for AWS::CloudWatch::Alarm. One deleted
// out of band is NotFound, as on AWS (a put would re-create it).
func (a *cwComposites) Update(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	l, err := a.o.Alarms.DescribeAlarms(ctx, monitor.AlarmFilter{Names: []string{r.PhysicalID}, Types: []string{monitor.TypeComposite}})
	if err == nil && len(l.Composite) == 0 {
		err = &monitor.Error{Kind: monitor.ErrResourceNotFound, Message: fmt.Sprintf("The composite alarm %s does not exist.", r.PhysicalID)}
	}
	if err != nil {
		return cfn.Outcome{}, handlerError(err)
	}
	out, err := a.put(ctx, r.PhysicalID, r.Props, nil)
	if err != nil {
		return out, err
	}
	if err := retagAlarm(ctx, a.o.Alarms, out.Attributes["Arn"], r.OldProps, r.Props); err != nil {
		return cfn.Outcome{}, err
	}
	return out, nil
}

func (a *cwComposites) Delete(ctx context.Context, r *cfn.Request) error {
	return deleteAlarm(ctx, a.o.Alarms, r.PhysicalID)
}

type cwDashboards struct{ o Options }

// put puts the dashboard; with createdBy set only when no other's
// dashboard has the name (DashboardInput.CreatedBy).
func (d *cwDashboards) put(ctx context.Context, name string, pr map[string]any, createdBy []monitor.Tag) (cfn.Outcome, error) {
	// Warnings do not fail the resource (CloudFormation ignores them).
	_, err := d.o.Alarms.PutDashboard(ctx, monitor.DashboardInput{Name: name, Body: str(pr, "DashboardBody"), CreatedBy: createdBy})
	if errors.Is(err, monitor.ErrAlreadyExists) {
		return cfn.Outcome{}, alreadyExists("AWS::CloudWatch::Dashboard", name)
	}
	if err != nil {
		return cfn.Outcome{}, handlerError(err)
	}
	return cfn.Outcome{PhysicalID: name}, nil
}

func (d *cwDashboards) Create(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	name := str(r.Props, "DashboardName")
	if name == "" {
		name = generatedName(r, 255)
	}
	return d.put(ctx, name, r.Props, monitorTags(stackTags(r)))
}

// Update replaces the dashboard's body (a new name replaces the
// dashboard); one deleted out of band is NotFound.
func (d *cwDashboards) Update(ctx context.Context, r *cfn.Request) (cfn.Outcome, error) {
	if _, err := d.o.Alarms.GetDashboard(ctx, r.PhysicalID); err != nil {
		return cfn.Outcome{}, handlerError(err)
	}
	return d.put(ctx, r.PhysicalID, r.Props, nil)
}

// Delete deletes the dashboard (one already gone is success).
func (d *cwDashboards) Delete(ctx context.Context, r *cfn.Request) error {
	err := d.o.Alarms.DeleteDashboards(ctx, []string{r.PhysicalID})
	if err != nil && !errors.Is(err, monitor.ErrDashboardNotFound) {
		return handlerError(err)
	}
	return nil
}

func monitorTags(tags [][2]string) []monitor.Tag {
	var out []monitor.Tag
	for _, t := range tags {
		out = append(out, monitor.Tag{Key: t[0], Value: t[1]})
	}
	return out
}

// retagAlarm gives the alarm (metric or composite) arn the tags of props:
// new and changed ones set, those only oldProps had removed (a put keeps
// an existing alarm's tags).
func retagAlarm(ctx context.Context, alarms Alarms, arn string, oldProps, props map[string]any) error {
	set, remove := tagDiff(tagsOf(oldProps, "Tags"), tagsOf(props, "Tags"))
	if len(set) > 0 {
		var tags []monitor.Tag
		for _, t := range set {
			tags = append(tags, monitor.Tag{Key: t[0], Value: t[1]})
		}
		if err := alarms.TagResource(ctx, arn, tags); err != nil {
			return handlerError(err)
		}
	}
	if len(remove) > 0 {
		if err := alarms.UntagResource(ctx, arn, remove); err != nil {
			return handlerError(err)
		}
	}
	return nil
}

// deleteAlarm deletes an alarm (metric or composite); one already gone is
// success.
func deleteAlarm(ctx context.Context, alarms Alarms, name string) error {
	err := alarms.DeleteAlarms(ctx, []string{name})
	if err != nil && !errors.Is(err, monitor.ErrResourceNotFound) {
		return handlerError(err)
	}
	return nil
}

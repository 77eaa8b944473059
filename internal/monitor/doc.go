// Package monitor is a region's CloudWatch domain: the metric store
// (series and their roll-ups at CloudWatch's resolutions and retentions),
// statistics, percentiles and metric math over it, metric alarms with
// their evaluation, composite alarms (rules over other alarms' states,
// rule.go, composite.go), state history and actions (through a Notifier:
// SNS, package monitor/notify), dashboards (stored JSON bodies, checked
// as CloudWatch checks them), and the Publisher that puts the AWS/EFS and
// replication metrics of the region's file systems into it. It knows
// AWS's rules, not its wire formats (package api/cloudwatch serves them);
// refusals are its sentinels, mapped by package api/awserr.
//
// Its keys, under 'w' in the monitoring store (docs/architecture.md):
// series 's', points 'p' (store.go), metric alarms 'a', composite alarms
// 'c', alarm history 'h' (alarm.go, composite.go, history.go) and
// dashboards 'd' (dashboard.go). Alarms and dashboards are JSON records
// keyed by name; a history item of a composite alarm says so in its
// "alarmType" field (absent: a metric alarm's, as in older stores).
package monitor

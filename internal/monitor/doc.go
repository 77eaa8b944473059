// Package monitor is a region's CloudWatch domain: the metric store
// (series and their roll-ups at CloudWatch's resolutions and retentions),
// statistics, percentiles and metric math over it, metric alarms with
// their evaluation, state history and actions (through a Notifier: SNS,
// package monitor/notify), and the Publisher that puts the AWS/EFS and
// replication metrics of the region's file systems into it. It knows
// AWS's rules, not its wire formats (package api/cloudwatch serves them);
// refusals are its sentinels, mapped by package api/awserr.
//
// Its keys, under 'w' in the monitoring store (docs/architecture.md):
// series 's', points 'p' (store.go), alarms 'a' and alarm history 'h'
// (alarm.go, history.go).
package monitor

// Package cloudwatch serves the CloudWatch API (signing name monitoring)
// of one region over package monitor, in the three protocols the clients
// send: awsQuery (form POST, XML: old botocore, the Go SDK with awsquery),
// awsJson1_0 (X-Amz-Target GraniteServiceVersion20100801.Op: aws-cli 1.45
// and boto3 1.43) and Smithy RPC v2 CBOR (POST
// /service/GraniteServiceVersion20100801/operation/Op: aws-sdk-go-v2).
// Each operation has one file and one input and output shape; package
// awsproto decodes and encodes them for every protocol and package awserr
// writes the errors (CloudWatch is query-compatible: JSON and CBOR errors
// carry x-amzn-query-error).
//
// Operations: GetMetricStatistics, GetMetricData, ListMetrics,
// PutMetricData, PutMetricAlarm, DescribeAlarms, DescribeAlarmsForMetric,
// DeleteAlarms, SetAlarmState, DescribeAlarmHistory, EnableAlarmActions,
// DisableAlarmActions, TagResource, UntagResource, ListTagsForResource,
// PutCompositeAlarm, PutDashboard, GetDashboard, ListDashboards,
// DeleteDashboards.
package cloudwatch

// Package efsrepl serves the EFS replication operations —
// CreateReplicationConfiguration, DescribeReplicationConfigurations and
// DeleteReplicationConfiguration — over replconf.Manager, as AWS
// serves them (REST-JSON, epoch-second timestamps, x-amzn-ErrorType
// errors), and regionfs's own operator operations under
// /2015-02-01/regionfs/ (planned or forced failover, loss report,
// replication status with initial-sync progress), which `regionfs status`
// and `regionfs failover` call with SigV4 like any client. Wrap puts it in
// front of the rest of the EFS API.
package efsrepl

// Package cloudformation serves the AWS CloudFormation API of a region in
// the query protocol (form-encoded Action=…&Version=2010-05-15, XML
// responses in the http://cloudformation.amazonaws.com/doc/2010-05-15/
// namespace with <member> lists, errors as <ErrorResponse>), over the stack
// engine of package cfn: every operation the aws CLI's cloudformation
// commands and their waiters call, `deploy` included (DescribeStacks,
// GetTemplateSummary, CreateChangeSet, DescribeChangeSet,
// ExecuteChangeSet).
//
// ExecuteChangeSet, CreateStack, UpdateStack and DeleteStack answer once
// the operation they start has finished, or after Handler.SettleWait
// (15 s by default), whichever is first: the CLI's waiters poll every 30
// seconds, so a stack that is done within seconds is reported done at the
// first poll. The operation is the same either way; only the answer waits.
//
// Requests reach the handler authenticated (package region verifies SigV4
// with service cloudformation).
package cloudformation

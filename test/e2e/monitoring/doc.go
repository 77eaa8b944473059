// Package monitoringe2e runs two `regionfs serve` processes and `regionfs
// edge` on a loopback range of its own (127.61, 127.62) and drives
// CloudWatch and SNS with the aws CLI, as an operator would: replication
// lag in AWS/EFS, an SNS topic with an HTTP subscriber and an email
// subscriber (a local SMTP receiver), an alarm on TimeSinceLastSync that
// fires when the destination region is killed, a signed notification, the
// alarm back to OK, and state kept across a restart.
package monitoringe2e

// Package iac tests the infrastructure-as-code APIs of a region —
// CloudFormation, KMS and EC2 security groups — end to end: the real region
// API server (SigV4, dispatch by service) in front of their handlers, over
// a control plane, KMS domain, VPC domain and stack engine on an in-memory
// engine, driven by aws-sdk-go-v2, the aws CLI and boto3.
package iac

// Package resources provides the CloudFormation resource types of a
// region: AWS::EFS::FileSystem, AWS::EFS::MountTarget,
// AWS::EFS::AccessPoint, AWS::KMS::Key, AWS::KMS::Alias,
// AWS::EC2::SecurityGroup and AWS::EC2::SecurityGroupIngress, each with its
// documented properties (and which of them replace the resource when they
// change) and return values. Providers act only through the region's
// domain packages — control (file systems, mount targets, access points),
// replication, the KMS keys and the VPC's security groups — the same calls
// the EFS, KMS and EC2 APIs make, with the same validation.
//
// Every Create is idempotent under its request's token: file systems use
// it as their CreationToken, access points as their ClientToken, keys and
// security groups carry it in their creation; a mount target found in its
// subnet with the requested settings after a restart is adopted.
package resources

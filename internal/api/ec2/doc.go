// Package ec2 serves the read-only subset of the Amazon EC2 API that EFS
// users need to find their subnet and security-group ids: DescribeSubnets,
// DescribeSecurityGroups, DescribeAvailabilityZones, DescribeRegions and DescribeVpcs, in
// EC2's query protocol (form-encoded Action=…&Version=2016-11-15, XML
// responses in the http://ec2.amazonaws.com/doc/2016-11-15/ namespace with
// <item> lists and lowerCamel names, errors as
// <Response><Errors><Error>…). The data is the region's configured VPC,
// subnets and security groups; nothing here changes state.
//
// Requests reach the handler already authenticated (package region verifies
// SigV4 with service ec2).
package ec2

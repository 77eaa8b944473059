package ec2

import "github.com/regionfs/regionfs/internal/api/awserr"

// Errors are answered through package awserr's table: EC2's refusals are
// awserr's ErrEC2… sentinels (their EC2 column holds the dotted codes,
// InvalidSubnetID.NotFound, …).

func errorf(kind error, format string, args ...any) *awserr.Error {
	return awserr.Errorf(kind, format, args...)
}

func invalidParameter(format string, args ...any) *awserr.Error {
	return errorf(awserr.ErrEC2InvalidParameterValue, format, args...)
}

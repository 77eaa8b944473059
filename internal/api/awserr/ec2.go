package awserr

import (
	"errors"
	"net/http"

	"github.com/regionfs/regionfs/internal/control/network"
)

// Errors of the EC2 subset. It has no domain package (its VPC, subnets
// and security groups come from the region's config), so its refusals are
// named here; they map to EC2's dotted codes in the EC2 column and to the
// closest generic error elsewhere.
var (
	ErrEC2InvalidParameterValue = errors.New("ec2: invalid parameter value")
	ErrEC2UnknownParameter      = errors.New("ec2: unknown parameter")
	ErrEC2InvalidNextToken      = errors.New("ec2: invalid next token")
	// ErrEC2DryRun: the request would have succeeded (DryRun=true).
	ErrEC2DryRun              = errors.New("ec2: dry run")
	ErrEC2MalformedSubnetID   = errors.New("ec2: malformed subnet id")
	ErrEC2SubnetNotFound      = errors.New("ec2: subnet not found")
	ErrEC2MalformedGroupID    = errors.New("ec2: malformed security group id")
	ErrEC2SecurityGroupAbsent = errors.New("ec2: security group not found")
	ErrEC2MalformedVPCID      = errors.New("ec2: malformed vpc id")
	ErrEC2VPCNotFound         = errors.New("ec2: vpc not found")
	ErrEC2MissingParameter    = errors.New("ec2: missing parameter")
	// ErrEC2UnsupportedOperation: the region's security groups are
	// configured, not managed through the API.
	ErrEC2UnsupportedOperation = errors.New("ec2: unsupported operation")
)

// ec2Row is an EC2 error: its code in the EC2 column, a generic
// validation or not-found error elsewhere.
func ec2Row(status int, code string, notFound bool) Code {
	c := Code{
		REST:  Wire{http.StatusBadRequest, "BadRequest"},
		JSON:  Wire{http.StatusBadRequest, "ValidationException"},
		Query: Wire{http.StatusBadRequest, "InvalidParameterValue"},
		EC2:   Wire{status, code},
	}
	if notFound {
		c.REST = Wire{http.StatusNotFound, "NotFound"}
		c.JSON = Wire{http.StatusNotFound, "ResourceNotFoundException"}
		c.Query = Wire{http.StatusNotFound, "ResourceNotFound"}
	}
	return c
}

var ec2Rows = []row{
	{ErrEC2InvalidParameterValue, ec2Row(http.StatusBadRequest, "InvalidParameterValue", false)},
	{ErrEC2UnknownParameter, ec2Row(http.StatusBadRequest, "UnknownParameter", false)},
	{ErrEC2InvalidNextToken, ec2Row(http.StatusBadRequest, "InvalidNextToken", false)},
	{ErrEC2DryRun, ec2Row(http.StatusPreconditionFailed, "DryRunOperation", false)},
	{ErrEC2MalformedSubnetID, ec2Row(http.StatusBadRequest, "InvalidSubnetID.Malformed", false)},
	{ErrEC2SubnetNotFound, ec2Row(http.StatusBadRequest, "InvalidSubnetID.NotFound", true)},
	{ErrEC2MalformedGroupID, ec2Row(http.StatusBadRequest, "InvalidGroupId.Malformed", false)},
	{ErrEC2SecurityGroupAbsent, ec2Row(http.StatusBadRequest, "InvalidGroup.NotFound", true)},
	{ErrEC2MalformedVPCID, ec2Row(http.StatusBadRequest, "InvalidVpcID.Malformed", false)},
	{ErrEC2VPCNotFound, ec2Row(http.StatusBadRequest, "InvalidVpcID.NotFound", true)},
	{ErrEC2MissingParameter, ec2Row(http.StatusBadRequest, "MissingParameter", false)},
	{ErrEC2UnsupportedOperation, ec2Row(http.StatusBadRequest, "UnsupportedOperation", false)},

	// Security groups (package control/network).
	{network.ErrGroupNotFound, handler(ec2Row(http.StatusBadRequest, "InvalidGroup.NotFound", true), "NotFound")},
	{network.ErrGroupIDMalformed, handler(ec2Row(http.StatusBadRequest, "InvalidGroupId.Malformed", false), "InvalidRequest")},
	{network.ErrDuplicate, handler(ec2Row(http.StatusBadRequest, "InvalidGroup.Duplicate", false), "AlreadyExists")},
	{network.ErrPermissionDup, handler(ec2Row(http.StatusBadRequest, "InvalidPermission.Duplicate", false), "AlreadyExists")},
	{network.ErrPermissionNotFound, handler(ec2Row(http.StatusBadRequest, "InvalidPermission.NotFound", true), "NotFound")},
	{network.ErrMalformed, handler(ec2Row(http.StatusBadRequest, "InvalidPermission.Malformed", false), "InvalidRequest")},
	{network.ErrInvalidParameter, handler(ec2Row(http.StatusBadRequest, "InvalidParameterValue", false), "InvalidRequest")},
	{network.ErrDependency, handler(ec2Row(http.StatusBadRequest, "DependencyViolation", false), "ResourceConflict")},
	{network.ErrCannotDelete, handler(ec2Row(http.StatusBadRequest, "CannotDelete", false), "InvalidRequest")},
	{network.ErrVPCNotFound, handler(ec2Row(http.StatusBadRequest, "InvalidVpcID.NotFound", true), "InvalidRequest")},
	{network.ErrRuleNotFound, handler(ec2Row(http.StatusBadRequest, "InvalidSecurityGroupRuleId.NotFound", true), "NotFound")},
	{network.ErrLimitExceeded, handler(ec2Row(http.StatusBadRequest, "RulesPerSecurityGroupLimitExceeded", false), "ServiceLimitExceeded")},
}

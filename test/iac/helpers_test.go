package iac

import "github.com/regionfs/regionfs/internal/control"

func createFS(token string) control.CreateFileSystemInput {
	return control.CreateFileSystemInput{CreationToken: token}
}

func createMT(fsID, group string) control.CreateMountTargetInput {
	return control.CreateMountTargetInput{FileSystemID: fsID, SubnetID: subA, SecurityGroups: []string{group}}
}

package efsrepl

import "github.com/regionfs/regionfs/internal/control/replconf"

// The EFS model's ReplicationConfigurationDescription.
type descriptionShape struct {
	SourceFileSystemID          string             `json:"SourceFileSystemId"`
	SourceFileSystemRegion      string             `json:"SourceFileSystemRegion"`
	SourceFileSystemArn         string             `json:"SourceFileSystemArn"`
	OriginalSourceFileSystemArn string             `json:"OriginalSourceFileSystemArn"`
	CreationTime                epoch              `json:"CreationTime"`
	Destinations                []destinationShape `json:"Destinations"`
	SourceFileSystemOwnerID     string             `json:"SourceFileSystemOwnerId,omitempty"`
}

type destinationShape struct {
	Status                  string `json:"Status"`
	FileSystemID            string `json:"FileSystemId"`
	Region                  string `json:"Region"`
	LastReplicatedTimestamp *epoch `json:"LastReplicatedTimestamp,omitempty"`
	OwnerID                 string `json:"OwnerId,omitempty"`
	StatusMessage           string `json:"StatusMessage,omitempty"`
	RoleArn                 string `json:"RoleArn,omitempty"`
}

func describe(d replconf.Description) descriptionShape {
	return descriptionShape{
		SourceFileSystemID:          d.SourceFileSystemID,
		SourceFileSystemRegion:      d.SourceRegion,
		SourceFileSystemArn:         d.SourceARN,
		OriginalSourceFileSystemArn: d.OriginalSourceARN,
		CreationTime:                epoch(d.CreationTime),
		SourceFileSystemOwnerID:     d.SourceOwnerID,
		Destinations: []destinationShape{{
			Status:                  string(d.Status),
			FileSystemID:            d.DestFileSystemID,
			Region:                  d.DestRegion,
			LastReplicatedTimestamp: epochPtr(d.LastReplicated),
			OwnerID:                 d.DestOwnerID,
			StatusMessage:           d.StatusMessage,
			RoleArn:                 d.RoleArn,
		}},
	}
}

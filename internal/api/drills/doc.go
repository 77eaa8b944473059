// Package drills serves regionfs's drill operations, in its own namespace
// under /2015-02-01/regionfs/ of the EFS endpoint (REST-JSON, SigV4 with
// the elasticfilesystem service, errors with x-amzn-ErrorType), so that
// the edge forwards them like any EFS call and any client can script them
// (`regionfs drill`, boto3 with docs/botocore's model, curl with SigV4):
//
//	POST /2015-02-01/regionfs/drills                    StartDrill → 200 Drill
//	GET  /2015-02-01/regionfs/drills?FileSystemId=&MaxItems=   ListDrills → 200 {"Drills": […]}
//	GET  /2015-02-01/regionfs/drills/{DrillId}          DescribeDrill → 200 Drill
//	POST /2015-02-01/regionfs/drills/{DrillId}/check    ReportDrillCheck → 200 Drill
//
// A drill runs in the destination region of a replication (package drill).
// Wrap puts the handler in front of the rest of the EFS API.
package drills

package kms

import (
	"net/http"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/control/keys"
)

// Errors are answered through package awserr's table: the domain's
// sentinels (package control/keys) have KMS's shape names there, the
// handler's own refusals are awserr's API errors or keys' sentinels with a
// message.

func refuse(kind error, msg string) *awserr.Error { return &awserr.Error{Err: kind, Message: msg} }

func notFound(msg string) *awserr.Error { return refuse(keys.ErrNotFound, msg) }

// fail writes err as a KMS (JSON 1.1) error; internal failures are logged
// with the request id and answered as KMSInternalException.
func (h *Handler) fail(w http.ResponseWriter, reqID, op string, err error) {
	awserr.Responder{Protocol: awsproto.JSON11, Service: awsproto.KMS, RequestID: reqID, Op: op, Log: h.log}.Fail(w, err)
}

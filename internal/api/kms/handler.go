package kms

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/control/keys"
)

// maxBody bounds a request (a key policy is at most 32 KiB).
const maxBody = 256 << 10

type operation func(h *Handler, ctx context.Context, body []byte) (any, error)

var operations = map[string]operation{
	"CreateKey":            (*Handler).createKey,
	"DescribeKey":          (*Handler).describeKey,
	"ListKeys":             (*Handler).listKeys,
	"EnableKey":            (*Handler).enableKey,
	"DisableKey":           (*Handler).disableKey,
	"ScheduleKeyDeletion":  (*Handler).scheduleKeyDeletion,
	"CancelKeyDeletion":    (*Handler).cancelKeyDeletion,
	"UpdateKeyDescription": (*Handler).updateKeyDescription,
	"CreateAlias":          (*Handler).createAlias,
	"UpdateAlias":          (*Handler).updateAlias,
	"DeleteAlias":          (*Handler).deleteAlias,
	"ListAliases":          (*Handler).listAliases,
	"EnableKeyRotation":    (*Handler).enableKeyRotation,
	"DisableKeyRotation":   (*Handler).disableKeyRotation,
	"GetKeyRotationStatus": (*Handler).getKeyRotationStatus,
	"RotateKeyOnDemand":    (*Handler).rotateKeyOnDemand,
	"ListKeyRotations":     (*Handler).listKeyRotations,
	"TagResource":          (*Handler).tagResource,
	"UntagResource":        (*Handler).untagResource,
	"ListResourceTags":     (*Handler).listResourceTags,
	"GetKeyPolicy":         (*Handler).getKeyPolicy,
	"PutKeyPolicy":         (*Handler).putKeyPolicy,
	"ListKeyPolicies":      (*Handler).listKeyPolicies,
}

// Handler serves the KMS API of one region.
type Handler struct {
	k   *keys.Keys
	log *slog.Logger
}

// NewHandler returns the handler of a region's keys.
func NewHandler(k *keys.Keys, log *slog.Logger) *Handler { return &Handler{k: k, log: log} }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := awserr.RequestID(w)
	target := r.Header.Get("X-Amz-Target")
	op, name, ok := strings.Cut(target, ".")
	if r.Method != http.MethodPost || !ok || op != "TrentService" {
		h.fail(w, reqID, target, refuse(awserr.ErrUnknownOperation, "The operation "+awsproto.Clip(target)+" is not valid for this web service."))
		return
	}
	fn, ok := operations[name]
	if !ok {
		h.fail(w, reqID, name, refuse(awserr.ErrUnknownOperation, "The operation "+awsproto.Clip(name)+" is not valid for this web service."))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		h.fail(w, reqID, name, refuse(keys.ErrValidation, "The request body is unreadable or larger than 256 KiB."))
		return
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	res, err := fn(h, r.Context(), body)
	if err != nil {
		h.fail(w, reqID, name, err)
		return
	}
	if res == nil {
		res = struct{}{}
	}
	b, err := json.Marshal(res)
	if err != nil {
		h.fail(w, reqID, name, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	h.log.Debug("kms request", "op", name, "req_id", reqID)
}

// decode unmarshals a request body; a member of the wrong type is a
// SerializationException, as AWS answers it.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return refuse(awserr.ErrMalformedRequest, "Start of structure or map found where not expected, or wrong type for member "+awsproto.Clip(te.Field))
		}
		return refuse(awserr.ErrMalformedRequest, "The request body is not valid JSON.")
	}
	return nil
}

// epoch renders a timestamp as KMS does (seconds, with milliseconds).
func epoch(t time.Time) *float64 {
	if t.IsZero() {
		return nil
	}
	v := float64(t.UnixMilli()) / 1000
	return &v
}

package awserr

import (
	"net/http"

	"github.com/regionfs/regionfs/internal/api/awsproto"
)

// QueryAction applies the awsQuery envelope's rules, as CloudWatch and SNS
// answer them, to a request whose form the service has read: the method is
// GET or POST, an Action is given, the Version, when given, is the one the
// service serves (want), and known(action) holds.
func QueryAction(method, action, version, want string, known func(action string) bool) error {
	switch {
	case method != http.MethodPost && method != http.MethodGet:
		return Errorf(ErrMethodNotAllowed, "The HTTP method %s is not supported; use POST.", method)
	case action == "":
		return Errorf(ErrMissingAction, "The request must contain the parameter Action.")
	case version != "" && version != want:
		return Errorf(ErrUnknownOperation, "Could not find operation %s for version %s.", awsproto.Clip(action), awsproto.Clip(version))
	case !known(action):
		return Errorf(ErrUnknownOperation, "The action %s is not valid for this web service.", awsproto.Clip(action))
	}
	return nil
}

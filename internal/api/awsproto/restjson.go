package awsproto

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ReadRESTJSON decodes a restJson1 request body of at most max bytes into
// v (an empty body leaves v as it is; unknown members are ignored). Its
// error says what is wrong with the body in words a client may see; the
// caller wraps it in its service's bad-request error.
func ReadRESTJSON(r *http.Request, max int64, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return errors.New("cannot read the request body")
	}
	if int64(len(b)) > max {
		return fmt.Errorf("request body larger than %d bytes", max)
	}
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("member %s has the wrong type: expected %s", te.Field, te.Type)
		}
		return errors.New("the request body is not valid JSON")
	}
	return nil
}

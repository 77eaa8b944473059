package refusal

import (
	"errors"
	"fmt"
	"testing"
)

func TestError(t *testing.T) {
	kind := errors.New("not found")
	other := errors.New("other")
	err := fmt.Errorf("op: %w", Errorf(kind, "Thing '%s' does not exist.", "x-1"))
	var e *Error
	if !errors.As(err, &e) || e.Message != "Thing 'x-1' does not exist." || e.PublicMessage() != e.Message || e.Error() != e.Message {
		t.Fatalf("got %#v", e)
	}
	if !errors.Is(err, kind) || errors.Is(err, other) {
		t.Fatalf("errors.Is: kind %v, other %v", errors.Is(err, kind), errors.Is(err, other))
	}
}

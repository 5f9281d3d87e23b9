package errdefs

import (
	"errors"
	"testing"
)

func TestHTTPStatus(t *testing.T) {
	want := map[Kind]int{
		KindUnknown: 500, KindInvalidParameter: 400, KindNotFound: 404, KindConflict: 409,
		KindNotImplemented: 501, KindUnavailable: 503, KindUnauthorized: 401,
	}
	for k, code := range want {
		if got := HTTPStatus(k); got != code {
			t.Errorf("HTTPStatus(%v) = %d, want %d", k, got, code)
		}
		// Every kind survives the trip over HTTP.
		err := FromHTTPStatus(code, errors.New("m"))
		if KindOf(err) != k || err.Error() != "m" {
			t.Errorf("FromHTTPStatus(%d) = %v of kind %v, want kind %v", code, err, KindOf(err), k)
		}
	}
	base := errors.New("too large")
	if err := FromHTTPStatus(413, base); err != base {
		t.Errorf("FromHTTPStatus(413) = %#v, want the error unchanged", err)
	}
}

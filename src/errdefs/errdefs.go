// Package errdefs classifies errors once, where they arise, so that the API
// layer can map them to HTTP status codes without parsing messages. It holds
// that mapping too (HTTPStatus, FromHTTPStatus), in one table for every
// server and client of the engine. A classified error keeps its message unchanged (Docker clients
// show it verbatim) and still unwraps to its cause.
package errdefs

import "errors"

// Kind is the class of an error.
type Kind int

// The kinds, after the status codes Docker's API answers with.
const (
	KindUnknown          Kind = iota // 500
	KindInvalidParameter             // 400
	KindNotFound                     // 404
	KindConflict                     // 409
	KindNotImplemented               // 501
	KindUnavailable                  // 503
	KindUnauthorized                 // 401
	KindForbidden                    // 403
)

type classified struct {
	err  error
	kind Kind
}

func (c *classified) Error() string { return c.err.Error() }
func (c *classified) Unwrap() error { return c.err }

func wrap(err error, k Kind) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, kind: k}
}

// InvalidParameter marks err as the caller's mistake.
func InvalidParameter(err error) error { return wrap(err, KindInvalidParameter) }

// NotFound marks err as naming something that does not exist.
func NotFound(err error) error { return wrap(err, KindNotFound) }

// Conflict marks err as clashing with the current state.
func Conflict(err error) error { return wrap(err, KindConflict) }

// NotImplemented marks err as a feature this engine does not have.
func NotImplemented(err error) error { return wrap(err, KindNotImplemented) }

// Unavailable marks err as a temporary refusal.
func Unavailable(err error) error { return wrap(err, KindUnavailable) }

// Unauthorized marks err as a refusal for missing or wrong credentials.
func Unauthorized(err error) error { return wrap(err, KindUnauthorized) }

// Forbidden marks err as a refusal that no credentials would change.
func Forbidden(err error) error { return wrap(err, KindForbidden) }

// KindOf returns the outermost classification in err's chain, KindUnknown if
// there is none.
func KindOf(err error) Kind {
	var c *classified
	if errors.As(err, &c) {
		return c.kind
	}
	return KindUnknown
}

package errdefs

// statuses is the one table between kinds and the HTTP status codes Docker's
// API answers with. The API server, the client and the daemon's client for
// the container monitor all read it, so that a kind survives the trip over
// HTTP unchanged. The codes are literals to keep this package free of
// net/http.
var statuses = [...]int{
	KindUnknown:          500, // Internal Server Error
	KindInvalidParameter: 400, // Bad Request
	KindNotFound:         404, // Not Found
	KindConflict:         409, // Conflict
	KindNotImplemented:   501, // Not Implemented
	KindUnavailable:      503, // Service Unavailable
	KindUnauthorized:     401, // Unauthorized
	KindForbidden:        403, // Forbidden
}

// HTTPStatus is the status code an error of kind k is answered with.
func HTTPStatus(k Kind) int {
	if k < 0 || int(k) >= len(statuses) {
		k = KindUnknown
	}
	return statuses[k]
}

// FromHTTPStatus classifies err, received with status code, as the kind that
// code stands for; err comes back as it is for a code that stands for no
// kind, 500 included.
func FromHTTPStatus(code int, err error) error {
	for k, c := range statuses {
		if c == code && Kind(k) != KindUnknown {
			return wrap(err, Kind(k))
		}
	}
	return err
}

// Package apiversion holds the range of Docker Engine API versions this
// engine speaks and their ordering. It is its own package so that the client
// can negotiate without linking the API server.
package apiversion

import (
	"strconv"
	"strings"
)

// The range of Docker Engine API versions this engine answers. The newest is
// that of the github.com/moby/moby/api types it is built on; the oldest is the
// oldest still used by SDKs in the field (docker-py, dockerode default to it).
const (
	Max = "1.56"
	Min = "1.24"
)

// Compare compares two dotted API versions numerically ("1.9" is older than
// "1.24"); it returns -1, 0 or 1. Missing parts count as 0.
func Compare(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	}
	return 0
}

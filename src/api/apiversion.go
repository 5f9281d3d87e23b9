package api

import (
	"strconv"
	"strings"
)

// The range of Docker Engine API versions this server answers. The newest is
// that of the github.com/moby/moby/api types it is built on; the oldest is the
// oldest still used by SDKs in the field (docker-py, dockerode default to it).
const (
	MaxVersion = "1.56"
	MinVersion = "1.24"
)

// CompareVersions compares two dotted API versions numerically ("1.9" is
// older than "1.24"); it returns -1, 0 or 1. Missing parts count as 0.
func CompareVersions(a, b string) int {
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

// splitVersion takes a leading "/v1.xx" off path, as Docker's router does
// ("/v{version:[0-9.]+}"). It returns the version ("" if the path has none)
// and the rest of the path.
func splitVersion(path string) (ver, rest string) {
	if !strings.HasPrefix(path, "/v") {
		return "", path
	}
	end := strings.IndexByte(path[1:], '/')
	if end < 0 {
		return "", path
	}
	seg := path[2 : end+1]
	if seg == "" || strings.Trim(seg, "0123456789.") != "" {
		return "", path
	}
	return seg, path[end+1:]
}

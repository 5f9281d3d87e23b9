package api

import "strings"

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

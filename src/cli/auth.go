package cli

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/distribution/reference"
)

// registryAuthFor returns the X-Registry-Auth value for the registry of
// ref, from the credentials the docker CLI stores in config.json
// ($DOCKER_CONFIG or ~/.docker). Only inline credentials ("auth") are
// read; credential helpers are not run.
func registryAuthFor(ref string) string {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".docker")
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return ""
	}
	var cfg struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			IdentityToken string `json:"identitytoken"`
		} `json:"auths"`
	}
	if json.Unmarshal(b, &cfg) != nil {
		return ""
	}
	host := reference.Domain(n)
	keys := []string{host, "https://" + host, "http://" + host}
	if host == "docker.io" {
		keys = append([]string{"https://index.docker.io/v1/"}, keys...)
	}
	for _, k := range keys {
		if a, ok := cfg.Auths[k]; ok && (a.Auth != "" || a.IdentityToken != "") {
			out, _ := json.Marshal(map[string]string{"auth": a.Auth, "identitytoken": a.IdentityToken, "serveraddress": k})
			return base64.URLEncoding.EncodeToString(out)
		}
	}
	return ""
}

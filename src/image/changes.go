package image

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/balena-os/balena-engine/src/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// applyChanges applies Dockerfile instructions, as "docker import
// --change" takes them, to an image config.
func applyChanges(cfg *dockerspec.DockerOCIImageConfig, changes []string) error {
	for _, ch := range changes {
		ch = strings.TrimSpace(ch)
		if ch == "" {
			continue
		}
		instr, rest, _ := strings.Cut(ch, " ")
		rest = strings.TrimSpace(rest)
		bad := func(why string) error {
			return errdefs.InvalidParameter(fmt.Errorf("invalid change %q: %s", ch, why))
		}
		switch strings.ToUpper(instr) {
		case "CMD", "ENTRYPOINT":
			args, err := commandArgs(rest)
			if err != nil {
				return bad(err.Error())
			}
			if strings.EqualFold(instr, "CMD") {
				cfg.Cmd = args
			} else {
				cfg.Entrypoint = args
			}
		case "ENV", "LABEL":
			kvs, err := keyValues(rest, strings.EqualFold(instr, "ENV"))
			if err != nil {
				return bad(err.Error())
			}
			for _, kv := range kvs {
				if strings.EqualFold(instr, "ENV") {
					cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
				} else {
					if cfg.Labels == nil {
						cfg.Labels = map[string]string{}
					}
					cfg.Labels[kv[0]] = kv[1]
				}
			}
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				if cfg.ExposedPorts == nil {
					cfg.ExposedPorts = map[string]struct{}{}
				}
				cfg.ExposedPorts[p] = struct{}{}
			}
		case "VOLUME":
			vols := strings.Fields(rest)
			if strings.HasPrefix(rest, "[") {
				if err := json.Unmarshal([]byte(rest), &vols); err != nil {
					return bad(err.Error())
				}
			}
			for _, v := range vols {
				if cfg.Volumes == nil {
					cfg.Volumes = map[string]struct{}{}
				}
				cfg.Volumes[v] = struct{}{}
			}
		case "USER":
			cfg.User = rest
		case "WORKDIR":
			cfg.WorkingDir = rest
		case "STOPSIGNAL":
			cfg.StopSignal = rest
		default:
			return bad("only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME and WORKDIR are supported")
		}
	}
	return nil
}

// commandArgs reads the JSON form (["a","b"]) or the shell form.
func commandArgs(s string) ([]string, error) {
	if strings.HasPrefix(s, "[") {
		var args []string
		if err := json.Unmarshal([]byte(s), &args); err != nil {
			return nil, err
		}
		return args, nil
	}
	if s == "" {
		return nil, fmt.Errorf("no command")
	}
	return []string{"/bin/sh", "-c", s}, nil
}

// keyValues reads "k=v k2=v2" (values may be double-quoted) or, for ENV,
// the old "k v" form.
func keyValues(s string, envOldForm bool) ([][2]string, error) {
	if envOldForm && !strings.Contains(strings.SplitN(s, " ", 2)[0], "=") {
		k, v, _ := strings.Cut(s, " ")
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		k, rest, ok := strings.Cut(s, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("want key=value")
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			v, s = rest[1:end+1], rest[end+2:]
		} else {
			v, s, _ = strings.Cut(rest, " ")
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

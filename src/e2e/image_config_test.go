//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// A container's config is completed with its image's at create, as
// Docker's create does and inspect shows: command, user, working
// directory, stop signal, exposed ports (which -P publishes), labels,
// volumes; the host name is recorded.
func TestE2EImageConfigMerged(t *testing.T) {
	_, _, _, env := withNetDaemon(t)
	docker := dockerOK(t, env)
	docker("create", "--name", "base", "busybox", "true")
	docker("commit", "--change", "EXPOSE 8000", "--change", "LABEL a=b", "--change", "LABEL c=d", "--change", "WORKDIR /tmp",
		"--change", "STOPSIGNAL SIGUSR1", "--change", `CMD ["sleep","100"]`, "--change", "VOLUME /v", "base", "exp:1")
	id := docker("run", "-d", "-P", "--label", "c=mine", "--name", "merged", "exp:1")
	got := docker("inspect", "--format", "{{.Config.Hostname}} {{json .Config.Cmd}} {{.Config.WorkingDir}} {{.Config.StopSignal}} {{json .Config.ExposedPorts}} {{json .Config.Labels}} {{json .Config.Volumes}}", "merged")
	want := id[:12] + ` ["sleep","100"] /tmp SIGUSR1 {"8000/tcp":{}} {"a":"b","c":"mine"} {"/v":{}}`
	if got != want {
		t.Errorf("the merged config:\n%s\nwant:\n%s", got, want)
	}
	if out := docker("port", "merged"); !strings.HasPrefix(out, "8000/tcp -> 0.0.0.0:") {
		t.Errorf("-P did not publish the image's exposed port: %q", out)
	}
	// An entrypoint given keeps the image's command out.
	docker("create", "--name", "entry", "--entrypoint", "echo", "exp:1")
	if got := docker("inspect", "--format", "{{json .Config.Entrypoint}} {{json .Config.Cmd}}", "entry"); got != `["echo"] null` {
		t.Errorf("with an entrypoint: %s", got)
	}
}

// With ICC off on the default bridge, a legacy link opens the linked
// container's exposed ports to the linking one, as Docker's does, and
// nothing else.
func TestE2ELinksWithoutICC(t *testing.T) {
	_, _, _, env := withNetDaemon(t, "--icc=false")
	docker := dockerOK(t, env)
	docker("run", "-d", "--name", "srv", "--expose", "8000", "busybox", "httpd", "-f", "-p", "8000")
	ip := docker("inspect", "--format", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "srv")
	docker("run", "-d", "--name", "linked", "--link", "srv:s", "busybox", "sleep", "1000")
	docker("run", "-d", "--name", "other", "busybox", "sleep", "1000")
	// busybox's wget: -T makes Debian's 1.35 crash, so timeout bounds it.
	fetch := func(from, port string) string {
		r := run(t, env, "docker", "exec", from, "timeout", "5", "wget", "-O-", "http://"+ip+":"+port+"/")
		return r.stdout + r.stderr
	}
	// httpd answers 404 for /: an answer is what matters.
	if out := fetch("linked", "8000"); !strings.Contains(out, "404") {
		t.Errorf("through the link: %q, want httpd's 404", out)
	}
	if out := fetch("other", "8000"); strings.Contains(out, "404") {
		t.Errorf("without a link, ICC off: %q, want no answer", out)
	}
	// The link follows srv to its next address.
	docker("restart", "-t", "0", "srv")
	ip = docker("inspect", "--format", "{{.NetworkSettings.Networks.bridge.IPAddress}}", "srv")
	if out := fetch("linked", "8000"); !strings.Contains(out, "404") {
		t.Errorf("through the link after srv restarted: %q, want httpd's 404", out)
	}
}

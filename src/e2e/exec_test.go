//go:build e2e

package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"

	containertypes "github.com/moby/moby/api/types/container"
)

// docker exec --privileged: the process has every capability, as in a
// privileged container, where a plain exec has the container's; the
// container's seccomp filter stays, as with Docker (runc applies the
// container's to every process of it).
func TestE2EExecPrivileged(t *testing.T) {
	p, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	docker("run", "-d", "--network", "none", "--name", "ep", "busybox", "sleep", "1000")
	defer run(t, env, "docker", "rm", "-f", "ep")
	status := func(args ...string) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, l := range strings.Split(docker(args...), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				out[k] = strings.TrimSpace(v)
			}
		}
		return out
	}
	plain := status("exec", "ep", "cat", "/proc/self/status")
	priv := status("exec", "--privileged", "ep", "cat", "/proc/self/status")
	all := status("run", "--rm", "--network", "none", "--privileged", "busybox", "cat", "/proc/self/status")
	if plain["CapEff"] == all["CapEff"] {
		t.Fatalf("a plain exec has every capability: %s", plain["CapEff"])
	}
	for _, k := range []string{"CapEff", "CapPrm", "CapBnd"} {
		if priv[k] != all[k] {
			t.Errorf("exec --privileged's %s: %s, want %s (a privileged container's)", k, priv[k], all[k])
		}
	}
	if priv["CapInh"] != "0000000000000000" || priv["CapAmb"] != "0000000000000000" {
		t.Errorf("exec --privileged's inheritable and ambient sets: %s %s", priv["CapInh"], priv["CapAmb"])
	}
	if priv["Seccomp"] != plain["Seccomp"] || plain["Seccomp"] != "2" {
		t.Errorf("seccomp: plain exec %s, privileged %s, want the container's filter (2) in both", plain["Seccomp"], priv["Seccomp"])
	}
	api := apiClient(t, p)
	eid, err := api.ExecCreate(t.Context(), "ep", containertypes.ExecCreateRequest{Cmd: []string{"true"}, Privileged: true})
	if err != nil {
		t.Fatal(err)
	}
	if in, err := api.ExecInspect(t.Context(), eid); err != nil || in.ProcessConfig == nil || in.ProcessConfig.Privileged == nil || !*in.ProcessConfig.Privileged {
		t.Errorf("exec inspect: %+v %v", in.ProcessConfig, err)
	}
}

// A privileged container has the host's device nodes in its /dev, as with
// Docker; a plain one has the default few.
func TestE2EPrivilegedHostDevices(t *testing.T) {
	_, _, env := withBusybox(t)
	docker := dockerOK(t, env)
	ents, err := os.ReadDir("/dev")
	if err != nil {
		t.Fatal(err)
	}
	var host []string
	for _, e := range ents {
		if e.Type()&os.ModeDevice != 0 && e.Name() != "console" {
			host = append(host, e.Name())
		}
	}
	if len(host) < 7 {
		t.Skipf("the host's /dev has %d device nodes: nothing beyond the defaults to look for", len(host))
	}
	priv := strings.Fields(docker("run", "--rm", "--network", "none", "--privileged", "busybox", "ls", "/dev"))
	for _, d := range host {
		if !slices.Contains(priv, d) {
			t.Errorf("/dev/%s of the host is not in a privileged container's /dev %v", d, priv)
		}
	}
	plain := strings.Fields(docker("run", "--rm", "--network", "none", "busybox", "ls", "/dev"))
	if len(plain) >= len(priv) {
		t.Errorf("a plain container's /dev has %d entries, a privileged one's %d", len(plain), len(priv))
	}
}

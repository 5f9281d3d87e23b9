package container

import (
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
)

// Docker's refusals at create (400 with its words).
func TestCheckSettings(t *testing.T) {
	for _, tc := range []struct {
		cfg  containertypes.Config
		host containertypes.HostConfig
		want string
	}{
		{containertypes.Config{Env: []string{"A=1", "=x"}}, containertypes.HostConfig{}, "invalid environment variable: =x"},
		{containertypes.Config{Env: []string{""}}, containertypes.HostConfig{}, "invalid environment variable: "},
		{containertypes.Config{}, containertypes.HostConfig{PidMode: "bogus"}, "invalid PID mode: bogus"},
		{containertypes.Config{}, containertypes.HostConfig{IpcMode: "bogus"}, "invalid IPC mode: bogus"},
		{containertypes.Config{}, containertypes.HostConfig{UTSMode: "bogus"}, "invalid UTS mode: bogus"},
		{containertypes.Config{}, containertypes.HostConfig{OomScoreAdj: 1001}, "range for oom score adj is [-1000, 1000]"},
		{containertypes.Config{}, containertypes.HostConfig{ShmSize: -1}, "SHM size can not be less than 0"},
		{containertypes.Config{}, containertypes.HostConfig{Resources: containertypes.Resources{CPUShares: -2}}, "invalid CPU shares (-2)"},
		{containertypes.Config{}, containertypes.HostConfig{Resources: containertypes.Resources{Memory: -5}}, "cannot be negative"},
		{containertypes.Config{Env: []string{"A=", "B"}}, containertypes.HostConfig{PidMode: "host", IpcMode: "private", UTSMode: "host", OomScoreAdj: -1000,
			Resources: containertypes.Resources{CPUQuota: -1}}, ""},
	} {
		err := checkSettings(&tc.cfg, &tc.host)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || errdefs.KindOf(err) != errdefs.KindInvalidParameter {
			t.Errorf("want %q, got %v", tc.want, err)
		}
	}
}

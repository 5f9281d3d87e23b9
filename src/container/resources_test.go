package container

import (
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
	containertypes "github.com/moby/moby/api/types/container"
)

func TestMergeResources(t *testing.T) {
	pids := int64(20)
	cur := containertypes.Resources{Memory: 32 << 20, CPUShares: 512, CpusetCpus: "0"}
	got, err := mergeResources(cur, containertypes.Resources{Memory: 64 << 20, PidsLimit: &pids, CPURealtimeRuntime: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if got.Memory != 64<<20 || got.CPUShares != 512 || got.CpusetCpus != "0" || got.PidsLimit == nil || *got.PidsLimit != 20 || got.CPURealtimeRuntime != 1000 {
		t.Errorf("merged %+v", got)
	}
	if cur.Memory != 32<<20 {
		t.Error("the current resources were changed in place")
	}
	for _, u := range []containertypes.Resources{
		{Memory: 64 << 20, Devices: []containertypes.DeviceMapping{{PathOnHost: "/dev/null"}}},
		{Ulimits: []*containertypes.Ulimit{{Name: "nofile", Soft: 1, Hard: 1}}},
	} {
		if _, err := mergeResources(cur, u); errdefs.KindOf(err) != errdefs.KindNotImplemented {
			t.Errorf("update %+v: %v, want not implemented", u, err)
		}
	}
}

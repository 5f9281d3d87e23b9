package container

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/moby/moby/api/types/blkiodev"
	containertypes "github.com/moby/moby/api/types/container"
)

// touch makes the files given under dir.
func touch(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The features are read from the controllers' files, as Docker's sysinfo
// reads them: a v1 host with BFQ (this build machine's kind), one with
// nothing but memory, and v2 hosts with and without the io controller and
// BFQ.
func TestProbeCgroups(t *testing.T) {
	v1 := t.TempDir()
	touch(t, v1, "memory/memory.swappiness", "memory/memory.oom_control", "cpu/cpu.rt_period_us",
		"blkio/blkio.bfq.io_service_bytes", "blkio/blkio.throttle.read_bps_device", "blkio/blkio.throttle.write_bps_device",
		"blkio/blkio.throttle.read_iops_device", "blkio/blkio.throttle.write_iops_device")
	got := probeCgroupV1(func(s string) string { return filepath.Join(v1, s) })
	want := cgroupFeatures{memorySwappiness: true, oomKillDisable: true, cpuRealtime: true, blkioWeight: true, blkioWeightDevice: true,
		weightDeviceBFQ: true, blkioReadBps: true, blkioWriteBps: true, blkioReadIOps: true, blkioWriteIOps: true}
	if got != want {
		t.Errorf("v1 with BFQ: %+v, want %+v", got, want)
	}
	// CFQ (before Linux 5.0) takes a weight for any device.
	touch(t, v1, "blkio/blkio.weight_device")
	want.weightDeviceBFQ = false
	if got := probeCgroupV1(func(s string) string { return filepath.Join(v1, s) }); got != want {
		t.Errorf("v1 with CFQ: %+v, want %+v", got, want)
	}
	bare := t.TempDir()
	touch(t, bare, "memory/memory.limit_in_bytes", "blkio/blkio.reset_stats")
	got = probeCgroupV1(func(s string) string {
		if s == "cpu" {
			return "" // not mounted
		}
		return filepath.Join(bare, s)
	})
	if got != (cgroupFeatures{}) {
		t.Errorf("v1 without the files: %+v, want nothing", got)
	}

	for _, tc := range []struct {
		controllers, scheduler string
		want                   cgroupFeatures
	}{
		{"cpuset cpu io memory pids", "mq-deadline kyber [bfq] none", cgroupFeatures{v2: true, blkioWeight: true, blkioWeightDevice: true,
			weightDeviceBFQ: true, blkioReadBps: true, blkioWriteBps: true, blkioReadIOps: true, blkioWriteIOps: true}},
		{"cpuset cpu io memory pids", "[mq-deadline] none", cgroupFeatures{v2: true, blkioWeight: true,
			blkioReadBps: true, blkioWriteBps: true, blkioReadIOps: true, blkioWriteIOps: true}},
		{"cpuset cpu memory pids", "[bfq] none", cgroupFeatures{v2: true}},
	} {
		root, sys := t.TempDir(), t.TempDir()
		touch(t, root, "cgroup.controllers")
		os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte(tc.controllers+"\n"), 0o644)
		touch(t, sys, "vda/queue/scheduler")
		os.WriteFile(filepath.Join(sys, "vda/queue/scheduler"), []byte(tc.scheduler+"\n"), 0o644)
		if got := probeCgroupV2(root, sys); got != tc.want {
			t.Errorf("v2 %q, scheduler %q: %+v, want %+v", tc.controllers, tc.scheduler, got, tc.want)
		}
	}
}

func int64p(v int64) *int64 { return &v }
func boolp(v bool) *bool    { return &v }

// Docker's checks of the resources against the hierarchy: what it cannot
// apply is discarded with Docker's warning, bad values refused with 400.
func TestAdaptResources(t *testing.T) {
	all := cgroupFeatures{memorySwappiness: true, oomKillDisable: true, cpuRealtime: true, blkioWeight: true, blkioWeightDevice: true,
		weightDeviceBFQ: true, blkioReadBps: true, blkioWriteBps: true, blkioReadIOps: true, blkioWriteIOps: true}
	v2 := cgroupFeatures{v2: true, blkioWeight: true, blkioReadBps: true, blkioWriteBps: true, blkioReadIOps: true, blkioWriteIOps: true}
	dev := []*blkiodev.ThrottleDevice{{Path: "/dev/sda", Rate: 1}}
	for _, tc := range []struct {
		name     string
		f        cgroupFeatures
		r        containertypes.Resources
		warnings []string
		err      string
		after    func(containertypes.Resources) bool // what is left
	}{
		{name: "the docker CLI's defaults", f: v2, r: containertypes.Resources{MemorySwappiness: int64p(-1), OomKillDisable: boolp(false)},
			after: func(r containertypes.Resources) bool { return r.MemorySwappiness == nil && r.OomKillDisable == nil }},
		{name: "the docker CLI's defaults on v1", f: all, r: containertypes.Resources{MemorySwappiness: int64p(-1), OomKillDisable: boolp(false)},
			after: func(r containertypes.Resources) bool {
				return r.MemorySwappiness == nil && r.OomKillDisable != nil && !*r.OomKillDisable
			}},
		{name: "swappiness on v1", f: all, r: containertypes.Resources{MemorySwappiness: int64p(10)},
			after: func(r containertypes.Resources) bool { return *r.MemorySwappiness == 10 }},
		{name: "swappiness on v2", f: v2, r: containertypes.Resources{MemorySwappiness: int64p(10)},
			warnings: []string{"Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded."},
			after:    func(r containertypes.Resources) bool { return r.MemorySwappiness == nil }},
		{name: "swappiness out of range", f: all, r: containertypes.Resources{MemorySwappiness: int64p(101)}, err: "Invalid value: 101, valid memory swappiness range is 0-100"},
		{name: "OOM killer off on v1 without a limit", f: all, r: containertypes.Resources{OomKillDisable: boolp(true)},
			warnings: []string{"OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources."}},
		{name: "OOM killer off on v1 with a limit", f: all, r: containertypes.Resources{OomKillDisable: boolp(true), Memory: 64 << 20}},
		{name: "OOM killer off on v2", f: v2, r: containertypes.Resources{OomKillDisable: boolp(true), Memory: 64 << 20},
			warnings: []string{"Your kernel does not support OomKillDisable. OomKillDisable discarded."},
			after:    func(r containertypes.Resources) bool { return r.OomKillDisable == nil }},
		{name: "real-time on v1", f: all, r: containertypes.Resources{CPURealtimePeriod: 1000000, CPURealtimeRuntime: 950000}},
		{name: "real-time on v2", f: v2, r: containertypes.Resources{CPURealtimeRuntime: 1000}, err: "kernel does not support CPU real-time scheduler"},
		{name: "real-time runtime above the period", f: all, r: containertypes.Resources{CPURealtimePeriod: 1000, CPURealtimeRuntime: 2000},
			err: "cpu real-time runtime cannot be higher than cpu real-time period"},
		{name: "CPU percent", f: all, r: containertypes.Resources{CPUPercent: 50}, warnings: []string{"linux does not support CPU percent. Percent discarded."},
			after: func(r containertypes.Resources) bool { return r.CPUPercent == 0 }},
		{name: "blkio on v1, a weight for a device of BFQ's", f: all, r: containertypes.Resources{BlkioWeight: 300, BlkioWeightDevice: []*blkiodev.WeightDevice{{Path: "/dev/bfq", Weight: 200}},
			BlkioDeviceReadBps: dev, BlkioDeviceWriteBps: dev, BlkioDeviceReadIOps: dev, BlkioDeviceWriteIOps: dev},
			after: func(r containertypes.Resources) bool {
				return len(r.BlkioWeightDevice) == 1 && len(r.BlkioDeviceReadBps) == 1 && len(r.BlkioDeviceWriteIOps) == 1
			}},
		{name: "a weight for a device of another scheduler's", f: all, r: containertypes.Resources{BlkioWeightDevice: []*blkiodev.WeightDevice{{Path: "/dev/bfq", Weight: 200}, {Path: "/dev/sda", Weight: 300}}},
			warnings: []string{"Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded."},
			after:    func(r containertypes.Resources) bool { return r.BlkioWeightDevice == nil }},
		{name: "a weight per device on v2 without BFQ", f: v2, r: containertypes.Resources{BlkioWeightDevice: []*blkiodev.WeightDevice{{Path: "/dev/sda", Weight: 200}}, BlkioDeviceReadBps: dev},
			warnings: []string{"Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded."},
			after: func(r containertypes.Resources) bool {
				return r.BlkioWeightDevice == nil && len(r.BlkioDeviceReadBps) == 1
			}},
		{name: "no blkio at all", f: cgroupFeatures{}, r: containertypes.Resources{BlkioWeight: 300, BlkioDeviceReadBps: dev, BlkioDeviceWriteBps: dev, BlkioDeviceReadIOps: dev, BlkioDeviceWriteIOps: dev},
			warnings: []string{
				"Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
				"Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded.",
				"Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded.",
				"Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded.",
				"Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded.",
			},
			after: func(r containertypes.Resources) bool {
				return r.BlkioWeight == 0 && r.BlkioDeviceReadBps == nil && r.BlkioDeviceWriteIOps == nil
			}},
		{name: "a device weight out of range", f: all, r: containertypes.Resources{BlkioWeightDevice: []*blkiodev.WeightDevice{{Path: "/dev/bfq", Weight: 5}}},
			err: "invalid weight for device: /dev/bfq:5"},
	} {
		r := tc.r
		warnings, err := adaptResources(&r, tc.f, func(path string) bool { return path == "/dev/bfq" })
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || errdefs.KindOf(err) != errdefs.KindInvalidParameter {
				t.Errorf("%s: %v, want 400 %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !slices.Equal(warnings, tc.warnings) {
			t.Errorf("%s: warnings\n%s\nwant\n%s", tc.name, strings.Join(warnings, "\n"), strings.Join(tc.warnings, "\n"))
		}
		if tc.after != nil && !tc.after(r) {
			t.Errorf("%s: left %+v", tc.name, r)
		}
	}
}

// Docker's refusals of Windows' fields, unknown runtimes and device
// requests, and the engine's of what it lacks, at create.
func TestCheckSettingsRefusals(t *testing.T) {
	for _, tc := range []struct {
		host containertypes.HostConfig
		kind errdefs.Kind
		want string
	}{
		{containertypes.HostConfig{Isolation: "hyperv"}, errdefs.KindInvalidParameter, "invalid isolation (hyperv): linux only supports 'default'"},
		{containertypes.HostConfig{Resources: containertypes.Resources{IOMaximumBandwidth: 1}}, errdefs.KindInvalidParameter, "invalid option: QoS maximum bandwidth configuration is not supported on linux"},
		{containertypes.HostConfig{Resources: containertypes.Resources{IOMaximumIOps: 1}}, errdefs.KindInvalidParameter, "invalid option: QoS maximum IOPs configuration is not supported on linux"},
		{containertypes.HostConfig{Resources: containertypes.Resources{CPUCount: 2}}, errdefs.KindInvalidParameter, "invalid option: CPU count is not supported on linux"},
		{containertypes.HostConfig{Runtime: "kata"}, errdefs.KindInvalidParameter, "unknown or invalid runtime name: kata"},
		{containertypes.HostConfig{Cgroup: "container:other"}, errdefs.KindNotImplemented, `Cgroup "container:other" (running in another container's cgroup) is not implemented`},
		{containertypes.HostConfig{Cgroup: "bogus"}, errdefs.KindInvalidParameter, `invalid cgroup spec "bogus": want container:NAME`},
		{containertypes.HostConfig{Resources: containertypes.Resources{DeviceRequests: []containertypes.DeviceRequest{{Count: -1, Capabilities: [][]string{{"gpu"}}}}}},
			errdefs.KindInvalidParameter, `could not select device driver "" with capabilities: [[gpu]]`},
		{containertypes.HostConfig{Resources: containertypes.Resources{DeviceRequests: []containertypes.DeviceRequest{{Driver: "cdi", DeviceIDs: []string{"vendor.com/class=x"}}}}},
			errdefs.KindInvalidParameter, `could not select device driver "cdi" with capabilities: []`},
		{containertypes.HostConfig{Isolation: "Default", Runtime: "runc"}, 0, ""},
		{containertypes.HostConfig{Isolation: "default", Runtime: "io.containerd.runc.v2"}, 0, ""},
	} {
		err := checkSettings(&containertypes.Config{}, &tc.host)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", tc.host, err)
			}
			continue
		}
		if err == nil || err.Error() != tc.want || errdefs.KindOf(err) != tc.kind {
			t.Errorf("want %v %q, got %v", tc.kind, tc.want, err)
		}
	}
}

// --storage-opt as Docker's overlay2 answers it off xfs: size needs xfs
// with project quotas, any other option is unknown.
func TestCheckStorageOpt(t *testing.T) {
	dir := t.TempDir()
	if checkStorageOpt(dir, nil) != nil {
		t.Error("no options refused")
	}
	err := checkStorageOpt(dir, map[string]string{"size": "1G"})
	if err == nil || errdefs.KindOf(err) == errdefs.KindNotImplemented {
		t.Skipf("the test directory is on xfs (%v)", err)
	}
	if err.Error() != "--storage-opt is supported only for overlay over xfs with 'pquota' mount option" || errdefs.KindOf(err) != errdefs.KindUnknown {
		t.Errorf("size: %v (kind %v, want Docker's 500)", err, errdefs.KindOf(err))
	}
	if err := checkStorageOpt(dir, map[string]string{"Zeta": "1", "alpha": "2"}); err == nil || err.Error() != "Unknown option alpha" {
		t.Errorf("unknown options: %v", err)
	}
}

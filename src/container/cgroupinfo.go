package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/moby/moby/api/types/blkiodev"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/opencontainers/cgroups"
)

// cgroupFeatures says which limits the host's cgroup hierarchy can apply.
// Docker finds out the same way (pkg/sysinfo): by the controllers' files
// on cgroup v1, by the root's controllers on v2, where memory swappiness,
// the OOM killer switch and real-time CPU limits do not exist at all.
type cgroupFeatures struct {
	v2                bool
	memorySwappiness  bool
	oomKillDisable    bool
	cpuRealtime       bool
	blkioWeight       bool
	blkioWeightDevice bool
	// weightDeviceBFQ: a weight per device is BFQ's (CFQ, which took one
	// for any device, is gone from Linux 5.0 on), so only for a device
	// whose scheduler is BFQ: the kernel refuses it for the others.
	weightDeviceBFQ bool
	blkioReadBps    bool
	blkioWriteBps   bool
	blkioReadIOps   bool
	blkioWriteIOps  bool
}

// hostCgroups is the host's, looked up once: a running engine does not
// see its hierarchy change.
var hostCgroups = sync.OnceValue(func() cgroupFeatures {
	if cgroups.IsCgroup2UnifiedMode() {
		return probeCgroupV2("/sys/fs/cgroup", "/sys/block")
	}
	return probeCgroupV1(func(subsystem string) string {
		mp, _ := cgroups.FindCgroupMountpoint("", subsystem)
		return mp
	})
})

func exists(dir, name string) bool {
	if dir == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

// realtimeBudget gives each cgroup from the root of the cpu hierarchy down
// to parent (an absolute cgroup path) the daemon's real-time period and
// runtime, as dockerd does: on cgroup v1 a cgroup's real-time runtime
// bounds its children's, and the kernel gives new cgroups none.
func realtimeBudget(parent string, period, runtime int64) error {
	if (period == 0 && runtime == 0) || hostCgroups().v2 || !strings.HasPrefix(parent, "/") {
		return nil
	}
	mnt, err := cgroups.FindCgroupMountpoint("", "cpu")
	if err != nil {
		return err
	}
	dir := mnt
	for _, part := range strings.Split(strings.Trim(parent, "/"), "/") {
		dir = filepath.Join(dir, part)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, f := range []struct {
			name  string
			value int64
		}{{"cpu.rt_period_us", period}, {"cpu.rt_runtime_us", runtime}} {
			if f.value == 0 {
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, f.name), []byte(fmt.Sprint(f.value)), 0o644); err != nil {
				return fmt.Errorf("real-time budget of the containers' parent cgroup: %w", err)
			}
		}
	}
	return nil
}

// probeCgroupV1 reads the controllers' files at the root of each v1
// hierarchy (mount gives a controller's mount point, "" for none).
func probeCgroupV1(mount func(subsystem string) string) cgroupFeatures {
	mem, cpu, blkio := mount("memory"), mount("cpu"), mount("blkio")
	// BFQ's v1 files are in every cgroup but the root (its statistics are
	// in the root too); libcontainer writes blkio.bfq.weight(_device) when
	// a container's cgroup has them, else CFQ's blkio.weight(_device).
	bfq := exists(blkio, "blkio.bfq.io_service_bytes")
	cfq := exists(blkio, "blkio.weight_device")
	return cgroupFeatures{
		memorySwappiness:  exists(mem, "memory.swappiness"),
		oomKillDisable:    exists(mem, "memory.oom_control"),
		cpuRealtime:       exists(cpu, "cpu.rt_period_us"),
		blkioWeight:       exists(blkio, "blkio.weight") || bfq,
		blkioWeightDevice: cfq || bfq,
		weightDeviceBFQ:   !cfq && bfq,
		blkioReadBps:      exists(blkio, "blkio.throttle.read_bps_device"),
		blkioWriteBps:     exists(blkio, "blkio.throttle.write_bps_device"),
		blkioReadIOps:     exists(blkio, "blkio.throttle.read_iops_device"),
		blkioWriteIOps:    exists(blkio, "blkio.throttle.write_iops_device"),
	}
}

// probeCgroupV2 reads the root's controllers. With the io controller the
// limits go to io.max and the weight to io.bfq.weight or io.weight; a
// weight per device only to io.bfq.weight, which libcontainer leaves out
// without BFQ: so that needs the BFQ scheduler on the host.
func probeCgroupV2(root, sysBlock string) cgroupFeatures {
	b, _ := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	io := false
	for _, c := range strings.Fields(string(b)) {
		io = io || c == "io"
	}
	bfq := io && bfqScheduler(sysBlock)
	return cgroupFeatures{v2: true, blkioWeight: io, blkioWeightDevice: bfq, weightDeviceBFQ: bfq,
		blkioReadBps: io, blkioWriteBps: io, blkioReadIOps: io, blkioWriteIOps: io}
}

// bfqScheduler says whether a block device of the host offers the BFQ
// I/O scheduler (which registers BFQ's cgroup files).
func bfqScheduler(sysBlock string) bool {
	devs, _ := os.ReadDir(sysBlock)
	for _, d := range devs {
		b, err := os.ReadFile(filepath.Join(sysBlock, d.Name(), "queue", "scheduler"))
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if strings.Trim(s, "[]") == "bfq" {
				return true
			}
		}
	}
	return false
}

// usesBFQ says whether the block device at path (or the disk a partition
// of it is on) schedules its I/O with BFQ: "[bfq]" in its scheduler file.
func usesBFQ(path string) bool {
	major, minor, err := blockDevice(path)
	if err != nil {
		return false
	}
	dev := fmt.Sprintf("/sys/dev/block/%d:%d", major, minor)
	if exists(dev, "partition") {
		dev = filepath.Join(dev, "..")
	}
	b, _ := os.ReadFile(filepath.Join(dev, "queue", "scheduler"))
	return strings.Contains(string(b), "[bfq]")
}

// adaptResources checks the resources a container asks for against what
// the host's cgroups can apply, as Docker's verifyPlatformContainerResources
// does: a limit the hierarchy in use cannot apply is discarded with
// Docker's warning (which the create response carries, and the docker CLI
// prints), a bad value is refused with Docker's 400. It changes r.
func adaptResources(r *containertypes.Resources, f cgroupFeatures, usesBFQ func(path string) bool) ([]string, error) {
	var warnings []string
	warn := func(w string) { warnings = append(warnings, w) }
	if r.MemorySwappiness != nil && *r.MemorySwappiness == -1 {
		r.MemorySwappiness = nil // the docker CLI's "not given"
	}
	if r.MemorySwappiness != nil && !f.memorySwappiness {
		warn("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.")
		r.MemorySwappiness = nil
	}
	if r.MemorySwappiness != nil && (*r.MemorySwappiness < 0 || *r.MemorySwappiness > 100) {
		return warnings, errdefs.InvalidParameter(fmt.Errorf("Invalid value: %v, valid memory swappiness range is 0-100", *r.MemorySwappiness)) //lint:ignore ST1005 Docker's wording
	}
	if r.OomKillDisable != nil && !f.oomKillDisable {
		// Docker warns only of a request to disable it.
		if *r.OomKillDisable {
			warn("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
		}
		r.OomKillDisable = nil
	}
	if r.OomKillDisable != nil && *r.OomKillDisable && r.Memory == 0 {
		warn("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.")
	}
	if (r.CPURealtimePeriod != 0 || r.CPURealtimeRuntime != 0) && !f.cpuRealtime {
		return warnings, errdefs.InvalidParameter(errors.New("kernel does not support CPU real-time scheduler"))
	}
	if r.CPURealtimePeriod < 0 || r.CPURealtimeRuntime < -1 {
		return warnings, errdefs.InvalidParameter(errors.New("invalid resource value: CPU real-time period and runtime cannot be negative"))
	}
	if r.CPURealtimePeriod != 0 && r.CPURealtimeRuntime != 0 && r.CPURealtimeRuntime > r.CPURealtimePeriod {
		return warnings, errdefs.InvalidParameter(errors.New("cpu real-time runtime cannot be higher than cpu real-time period"))
	}
	if r.CPUPercent > 0 {
		warn("linux does not support CPU percent. Percent discarded.")
		r.CPUPercent = 0
	}
	if r.BlkioWeight > 0 && !f.blkioWeight {
		warn("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
		r.BlkioWeight = 0
	}
	weighable := f.blkioWeightDevice
	for _, d := range r.BlkioWeightDevice {
		weighable = weighable && d != nil && (!f.weightDeviceBFQ || usesBFQ(d.Path))
	}
	if len(r.BlkioWeightDevice) > 0 && !weighable {
		warn("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.")
		r.BlkioWeightDevice = nil
	}
	throttles := []struct {
		list      *[]*blkiodev.ThrottleDevice
		supported bool
		warning   string
	}{
		{&r.BlkioDeviceReadBps, f.blkioReadBps, "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded."},
		{&r.BlkioDeviceWriteBps, f.blkioWriteBps, "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded."},
		{&r.BlkioDeviceReadIOps, f.blkioReadIOps, "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded."},
		{&r.BlkioDeviceWriteIOps, f.blkioWriteIOps, "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded."},
	}
	for _, t := range throttles {
		if len(*t.list) > 0 && !t.supported {
			warn(t.warning)
			*t.list = nil
		}
	}
	for _, d := range r.BlkioWeightDevice {
		if d == nil || d.Weight < 10 || d.Weight > 1000 {
			return warnings, errdefs.InvalidParameter(fmt.Errorf("invalid weight for device: %s", weightDeviceString(d)))
		}
	}
	return warnings, nil
}

func weightDeviceString(d *blkiodev.WeightDevice) string {
	if d == nil {
		return "null"
	}
	return d.String()
}

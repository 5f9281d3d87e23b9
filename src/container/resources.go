package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/moby/moby/api/types/blkiodev"
	containertypes "github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const minMemory = 6 << 20 // Docker's floor

func setResources(s *specs.Spec, host *containertypes.HostConfig) error {
	r := host.Resources
	lr := s.Linux.Resources
	if r.Memory != 0 || r.MemorySwap != 0 || r.MemoryReservation != 0 {
		if r.Memory > 0 && r.Memory < minMemory {
			return errdefs.InvalidParameter(errors.New("Minimum memory limit allowed is 6MB")) //lint:ignore ST1005 Docker's wording
		}
		if r.MemorySwap > 0 && r.Memory == 0 {
			return errdefs.InvalidParameter(errors.New("You should always set the Memory limit when using Memoryswap limit, see usage")) //lint:ignore ST1005 Docker's wording
		}
		if r.MemorySwap > 0 && r.MemorySwap < r.Memory {
			return errdefs.InvalidParameter(errors.New("Minimum memoryswap limit should be larger than memory limit, see usage")) //lint:ignore ST1005 Docker's wording
		}
		lr.Memory = &specs.LinuxMemory{}
		if r.Memory > 0 {
			lr.Memory.Limit = &r.Memory
		}
		if r.MemorySwap != 0 {
			lr.Memory.Swap = &r.MemorySwap
		}
		if r.MemoryReservation > 0 {
			lr.Memory.Reservation = &r.MemoryReservation
		}
	}
	// Create checked these against the host's cgroups (adaptResources);
	// -1 is the docker CLI's "not given", as records made before kept it.
	if r.MemorySwappiness != nil && *r.MemorySwappiness >= 0 {
		if lr.Memory == nil {
			lr.Memory = &specs.LinuxMemory{}
		}
		sw := uint64(*r.MemorySwappiness)
		lr.Memory.Swappiness = &sw
	}
	if r.OomKillDisable != nil && *r.OomKillDisable {
		if lr.Memory == nil {
			lr.Memory = &specs.LinuxMemory{}
		}
		yes := true
		lr.Memory.DisableOOMKiller = &yes
	}
	if r.NanoCPUs != 0 && (r.CPUQuota != 0 || r.CPUPeriod != 0) {
		return errdefs.InvalidParameter(errors.New("conflicting options: Nano CPUs and CPU Period cannot both be set"))
	}
	cpu := &specs.LinuxCPU{}
	set := false
	if r.NanoCPUs != 0 {
		n := int64(runtime.NumCPU())
		if r.NanoCPUs < 1e7 || r.NanoCPUs > n*1e9 {
			return errdefs.InvalidParameter(fmt.Errorf("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n))
		}
		period := uint64(100000)
		quota := r.NanoCPUs * int64(period) / 1e9
		cpu.Period, cpu.Quota, set = &period, &quota, true
	}
	if r.CPUQuota != 0 {
		q := r.CPUQuota
		cpu.Quota, set = &q, true
	}
	if r.CPUPeriod != 0 {
		p := uint64(r.CPUPeriod)
		cpu.Period, set = &p, true
	}
	if r.CPUShares != 0 {
		if r.CPUShares < 0 {
			return errdefs.InvalidParameter(fmt.Errorf("invalid CPU shares (%d): value must be a positive integer", r.CPUShares))
		}
		sh := uint64(r.CPUShares)
		cpu.Shares, set = &sh, true
	}
	if r.CpusetCpus != "" {
		if err := validCPUSet(r.CpusetCpus, runtime.NumCPU()); err != nil {
			return err
		}
		cpu.Cpus, set = r.CpusetCpus, true
	}
	if r.CpusetMems != "" {
		cpu.Mems, set = r.CpusetMems, true
	}
	if r.CPURealtimePeriod > 0 {
		p := uint64(r.CPURealtimePeriod)
		cpu.RealtimePeriod, set = &p, true
	}
	if r.CPURealtimeRuntime != 0 {
		rt := r.CPURealtimeRuntime
		cpu.RealtimeRuntime, set = &rt, true
	}
	if set {
		lr.CPU = cpu
	}
	if r.PidsLimit != nil && *r.PidsLimit != 0 {
		l := *r.PidsLimit
		lr.Pids = &specs.LinuxPids{Limit: &l}
	}
	if r.BlkioWeight != 0 {
		if r.BlkioWeight < 10 || r.BlkioWeight > 1000 {
			return errdefs.InvalidParameter(errors.New("range of blkio weight is from 10 to 1000"))
		}
		w := r.BlkioWeight
		lr.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	return setBlockIODevices(lr, r)
}

// setBlockIODevices puts the per-device weights and limits into the spec
// by the devices' numbers, as Docker does (cgroup v1's blkio files and
// v2's io.max and io.bfq.weight take "major:minor").
func setBlockIODevices(lr *specs.LinuxResources, r containertypes.Resources) error {
	if len(r.BlkioWeightDevice)+len(r.BlkioDeviceReadBps)+len(r.BlkioDeviceWriteBps)+len(r.BlkioDeviceReadIOps)+len(r.BlkioDeviceWriteIOps) == 0 {
		return nil
	}
	if lr.BlockIO == nil {
		lr.BlockIO = &specs.LinuxBlockIO{}
	}
	bio := lr.BlockIO
	for _, d := range r.BlkioWeightDevice {
		if d == nil {
			continue
		}
		major, minor, err := blockDevice(d.Path)
		if err != nil {
			return err
		}
		w := d.Weight
		bio.WeightDevice = append(bio.WeightDevice, specs.LinuxWeightDevice{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Weight: &w})
	}
	for _, t := range []struct {
		from []*blkiodev.ThrottleDevice
		to   *[]specs.LinuxThrottleDevice
	}{
		{r.BlkioDeviceReadBps, &bio.ThrottleReadBpsDevice}, {r.BlkioDeviceWriteBps, &bio.ThrottleWriteBpsDevice},
		{r.BlkioDeviceReadIOps, &bio.ThrottleReadIOPSDevice}, {r.BlkioDeviceWriteIOps, &bio.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.from {
			if d == nil {
				continue
			}
			major, minor, err := blockDevice(d.Path)
			if err != nil {
				return err
			}
			*t.to = append(*t.to, specs.LinuxThrottleDevice{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: d.Rate})
		}
	}
	return nil
}

// blockDevice is the device numbers of the block device at path.
func blockDevice(path string) (major, minor int64, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, errdefs.InvalidParameter(&os.PathError{Op: "stat", Path: path, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, 0, errdefs.InvalidParameter(fmt.Errorf("%s is not a block device", path))
	}
	return int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev))), nil
}

// validCPUSet checks "0-2,4" against the CPUs this machine has.
func validCPUSet(set string, n int) error {
	bad := errdefs.InvalidParameter(fmt.Errorf("invalid value %s for cpuset cpus", set))
	for _, part := range strings.Split(set, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return bad
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return bad
			}
		}
		if a < 0 || b >= n {
			return errdefs.InvalidParameter(fmt.Errorf("requested CPUs are not available - requested %s, available: 0-%d", set, n-1))
		}
	}
	return nil
}

func setDevices(s *specs.Spec, host *containertypes.HostConfig) error {
	lr := s.Linux.Resources
	lr.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	if host.Privileged {
		// Every device, and the host's device nodes in /dev, as Docker
		// gives a privileged container (a device's serial ports, I2C and
		// GPIO are what balena applications run privileged for).
		lr.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	for _, d := range host.Devices {
		dev, rule, err := deviceFromHost(d.PathOnHost, d.PathInContainer, d.CgroupPermissions)
		if err != nil {
			return err
		}
		s.Linux.Devices = append(s.Linux.Devices, dev)
		if !host.Privileged {
			lr.Devices = append(lr.Devices, rule)
		}
	}
	if host.Privileged {
		for _, d := range hostDevices("/dev") {
			// A --device given for the same path wins.
			if !slices.ContainsFunc(s.Linux.Devices, func(o specs.LinuxDevice) bool { return o.Path == d.Path }) {
				s.Linux.Devices = append(s.Linux.Devices, d)
			}
		}
	}
	for _, r := range host.DeviceCgroupRules {
		rule, err := parseCgroupRule(r)
		if err != nil {
			return err
		}
		lr.Devices = append(lr.Devices, rule)
	}
	return nil
}

func deviceFromHost(path, inContainer, perms string) (specs.LinuxDevice, specs.LinuxDeviceCgroup, error) {
	if inContainer == "" {
		inContainer = path
	}
	if perms == "" {
		perms = "rwm"
	}
	if strings.Trim(perms, "rwm") != "" {
		return specs.LinuxDevice{}, specs.LinuxDeviceCgroup{}, errdefs.InvalidParameter(fmt.Errorf("invalid device cgroup permissions %q", perms))
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return specs.LinuxDevice{}, specs.LinuxDeviceCgroup{}, errdefs.InvalidParameter(
			fmt.Errorf("error gathering device information while adding custom device %q: %w", path, err))
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, specs.LinuxDeviceCgroup{}, errdefs.InvalidParameter(fmt.Errorf("%s is not a device node", path))
	}
	major, minor := int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
	mode := os.FileMode(st.Mode &^ unix.S_IFMT)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{Path: inContainer, Type: typ, Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid},
		specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: perms}, nil
}

// hostDevices are the device nodes below dir, as Docker's privileged
// containers get them: not those of the directories a container has of its
// own (pseudo-terminals, shared memory, message queues) nor the console; a
// node that cannot be read is left out.
func hostDevices(dir string) []specs.LinuxDevice {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []specs.LinuxDevice
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.IsDir():
			switch e.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
			default:
				out = append(out, hostDevices(p)...)
			}
		case e.Type()&os.ModeDevice != 0 && p != "/dev/console":
			if dev, _, err := deviceFromHost(p, p, "rwm"); err == nil {
				out = append(out, dev)
			}
		}
	}
	return out
}

// parseCgroupRule reads "c 1:3 rwm", "b 8:* r", "a *:* rwm".
func parseCgroupRule(r string) (specs.LinuxDeviceCgroup, error) {
	bad := errdefs.InvalidParameter(fmt.Errorf("invalid device cgroup rule %q: want TYPE MAJOR:MINOR ACCESS", r))
	f := strings.Fields(r)
	if len(f) != 3 || (f[0] != "a" && f[0] != "b" && f[0] != "c") || strings.Trim(f[2], "rwm") != "" || f[2] == "" {
		return specs.LinuxDeviceCgroup{}, bad
	}
	maj, mnr, ok := strings.Cut(f[1], ":")
	if !ok {
		return specs.LinuxDeviceCgroup{}, bad
	}
	num := func(s string) (*int64, error) {
		if s == "*" {
			return nil, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, bad
		}
		return &n, nil
	}
	a, err := num(maj)
	if err != nil {
		return specs.LinuxDeviceCgroup{}, err
	}
	b, err := num(mnr)
	if err != nil {
		return specs.LinuxDeviceCgroup{}, err
	}
	return specs.LinuxDeviceCgroup{Allow: true, Type: f[0], Major: a, Minor: b, Access: f[2]}, nil
}

// mergeResources lays the fields an update sets over the container's
// resources. An update of a field the engine cannot change on a live
// container answers 501 naming it.
func mergeResources(cur, u containertypes.Resources) (containertypes.Resources, error) {
	rest := u
	set := func(dst *int64, v *int64) {
		if *v != 0 {
			*dst = *v
		}
		*v = 0
	}
	set(&cur.Memory, &rest.Memory)
	set(&cur.MemorySwap, &rest.MemorySwap)
	set(&cur.MemoryReservation, &rest.MemoryReservation)
	set(&cur.NanoCPUs, &rest.NanoCPUs)
	set(&cur.CPUQuota, &rest.CPUQuota)
	set(&cur.CPUPeriod, &rest.CPUPeriod)
	set(&cur.CPUShares, &rest.CPUShares)
	set(&cur.CPURealtimePeriod, &rest.CPURealtimePeriod)
	set(&cur.CPURealtimeRuntime, &rest.CPURealtimeRuntime)
	if rest.PidsLimit != nil {
		cur.PidsLimit, rest.PidsLimit = rest.PidsLimit, nil
	}
	if rest.CpusetCpus != "" {
		cur.CpusetCpus, rest.CpusetCpus = rest.CpusetCpus, ""
	}
	if rest.CpusetMems != "" {
		cur.CpusetMems, rest.CpusetMems = rest.CpusetMems, ""
	}
	if rest.BlkioWeight != 0 {
		cur.BlkioWeight, rest.BlkioWeight = rest.BlkioWeight, 0
	}
	if !reflect.ValueOf(rest).IsZero() {
		return cur, errdefs.NotImplemented(errors.New("not implemented: balena-engine can update memory, memory-swap, memory-reservation, cpus, cpu-quota, cpu-period, cpu-shares, cpu-rt-period, cpu-rt-runtime, cpuset-cpus, cpuset-mems, pids-limit and blkio-weight, not the other resources given"))
	}
	return cur, nil
}

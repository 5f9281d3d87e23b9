package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/balena-os/balena-engine/src/client"
	"github.com/balena-os/balena-engine/src/stdstream"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/blkiodev"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/spf13/pflag"
)

// runFlags are the flags of "run" and "create".
type runFlags struct {
	name, user, workdir, hostname, entrypoint, stopSignal, logDriver, restart    string
	shmSize                                                                      string
	healthCmd                                                                    string
	healthInterval, healthTimeout, healthStartPeriod                             time.Duration
	healthRetries                                                                int
	noHealthcheck                                                                bool
	env, envFile, volumes, mounts, labels, capAdd, capDrop, devices, deviceRules []string
	securityOpts, tmpfs, ulimits, sysctls, groupAdd, logOpts                     []string
	readBps, writeBps, readIOps, writeIOps                                       []string
	stopTimeout                                                                  int
	privileged, readOnly, rm, detach, interactive, tty, init                     bool
	resourceFlags
	netFlags
}

// resourceFlags are the cgroup limits "run", "create" and "update" share.
type resourceFlags struct {
	memory, memorySwap, cpus, cpusetCpus, cpusetMems string
	cpuShares, blkioWeight, pidsLimit                int64
}

func (f *resourceFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&f.memory, "memory", "m", "", "memory limit")
	fs.StringVar(&f.memorySwap, "memory-swap", "", "swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.StringVar(&f.cpus, "cpus", "", "number of CPUs")
	fs.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.StringVar(&f.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&f.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.Int64Var(&f.pidsLimit, "pids-limit", 0, "tune container pids limit (set -1 for unlimited)")
	fs.Int64Var(&f.blkioWeight, "blkio-weight", 0, "block IO (relative weight), between 10 and 1000")
}

// apply sets the limits given on the command line in r.
func (f *resourceFlags) apply(fs *pflag.FlagSet, r *containertypes.Resources) error {
	var err error
	if r.Memory, err = sizeFlag("memory", f.memory); err != nil {
		return err
	}
	if r.MemorySwap, err = sizeFlag("memory-swap", f.memorySwap); err != nil {
		return err
	}
	if f.cpus != "" {
		v, err := strconv.ParseFloat(f.cpus, 64)
		if err != nil {
			return usageError{fmt.Sprintf("invalid argument %q for \"--cpus\" flag", f.cpus)}
		}
		r.NanoCPUs = int64(v * 1e9)
	}
	r.CPUShares, r.CpusetCpus, r.CpusetMems = f.cpuShares, f.cpusetCpus, f.cpusetMems
	r.BlkioWeight = uint16(f.blkioWeight)
	if fs.Changed("pids-limit") {
		r.PidsLimit = &f.pidsLimit
	}
	return nil
}

// sizeFlag reads a size in bytes ("64m"); "-1" is unlimited.
func sizeFlag(flag, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	if v == "-1" {
		return -1, nil
	}
	n, err := units.RAMInBytes(v)
	if err != nil {
		return 0, usageError{fmt.Sprintf("invalid argument %q for \"--%s\" flag: %v", v, flag, err)}
	}
	return n, nil
}

func (f *runFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.name, "name", "", "assign a name to the container")
	fs.StringVarP(&f.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fs.StringVarP(&f.hostname, "hostname", "h", "", "container host name")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "overwrite the default ENTRYPOINT of the image")
	fs.StringVar(&f.stopSignal, "stop-signal", "", "signal to stop the container")
	fs.IntVar(&f.stopTimeout, "stop-timeout", -1, "timeout (in seconds) to stop a container")
	fs.StringVar(&f.logDriver, "log-driver", "", "logging driver for the container")
	fs.StringArrayVar(&f.logOpts, "log-opt", nil, "log driver options")
	fs.StringVar(&f.restart, "restart", "no", "restart policy to apply when a container exits")
	fs.StringVar(&f.shmSize, "shm-size", "", "size of /dev/shm")
	f.resourceFlags.register(fs)
	fs.StringArrayVarP(&f.env, "env", "e", nil, "set environment variables")
	fs.StringArrayVar(&f.envFile, "env-file", nil, "read in a file of environment variables")
	fs.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind mount a volume")
	fs.StringArrayVar(&f.mounts, "mount", nil, "attach a filesystem mount to the container")
	fs.StringArrayVarP(&f.labels, "label", "l", nil, "set meta data on a container")
	fs.StringArrayVar(&f.capAdd, "cap-add", nil, "add Linux capabilities")
	fs.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop Linux capabilities")
	fs.StringArrayVar(&f.devices, "device", nil, "add a host device to the container")
	fs.StringArrayVar(&f.deviceRules, "device-cgroup-rule", nil, "add a rule to the cgroup allowed devices list")
	fs.StringArrayVar(&f.readBps, "device-read-bps", nil, "limit read rate (bytes per second) from a device (/dev/sda:1mb)")
	fs.StringArrayVar(&f.writeBps, "device-write-bps", nil, "limit write rate (bytes per second) to a device (/dev/sda:1mb)")
	fs.StringArrayVar(&f.readIOps, "device-read-iops", nil, "limit read rate (IO per second) from a device (/dev/sda:1000)")
	fs.StringArrayVar(&f.writeIOps, "device-write-iops", nil, "limit write rate (IO per second) to a device (/dev/sda:1000)")
	fs.StringArrayVar(&f.securityOpts, "security-opt", nil, "security options")
	fs.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs directory")
	fs.StringArrayVar(&f.ulimits, "ulimit", nil, "ulimit options")
	fs.StringArrayVar(&f.sysctls, "sysctl", nil, "sysctl options")
	fs.StringArrayVar(&f.groupAdd, "group-add", nil, "add additional groups to join")
	f.netFlags.register(fs)
	fs.BoolVar(&f.privileged, "privileged", false, "give extended privileges to this container")
	fs.BoolVar(&f.readOnly, "read-only", false, "mount the container's root filesystem as read only")
	fs.BoolVar(&f.rm, "rm", false, "automatically remove the container when it exits")
	fs.BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	fs.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fs.BoolVar(&f.init, "init", false, "run an init inside the container that forwards signals and reaps processes")
	fs.StringVar(&f.healthCmd, "health-cmd", "", "command to run to check health")
	fs.DurationVar(&f.healthInterval, "health-interval", 0, "time between running the check")
	fs.DurationVar(&f.healthTimeout, "health-timeout", 0, "maximum time to allow one check to run")
	fs.DurationVar(&f.healthStartPeriod, "health-start-period", 0, "start period for the container to initialize before counting retries")
	fs.IntVar(&f.healthRetries, "health-retries", 0, "consecutive failures needed to report unhealthy")
	fs.BoolVar(&f.noHealthcheck, "no-healthcheck", false, "disable any container-specified HEALTHCHECK")
}

// request builds the create request from the flags and the positional
// IMAGE [COMMAND [ARG...]].
func (f *runFlags) request(fs *pflag.FlagSet, args []string) (containertypes.CreateRequest, error) {
	cfg := &containertypes.Config{Image: args[0], Cmd: args[1:], User: f.user, WorkingDir: f.workdir,
		Hostname: f.hostname, Tty: f.tty, OpenStdin: f.interactive, StdinOnce: f.interactive,
		AttachStdout: !f.detach, AttachStderr: !f.detach, StopSignal: f.stopSignal}
	if fs.Changed("stop-timeout") {
		cfg.StopTimeout = &f.stopTimeout
	}
	if f.noHealthcheck {
		cfg.Healthcheck = &containertypes.HealthConfig{Test: []string{"NONE"}}
	} else if f.healthCmd != "" || f.healthInterval != 0 || f.healthRetries != 0 || f.healthTimeout != 0 || f.healthStartPeriod != 0 {
		cfg.Healthcheck = &containertypes.HealthConfig{Interval: f.healthInterval, Timeout: f.healthTimeout,
			StartPeriod: f.healthStartPeriod, Retries: f.healthRetries}
		if f.healthCmd != "" {
			cfg.Healthcheck.Test = []string{"CMD-SHELL", f.healthCmd}
		}
	}
	if fs.Changed("entrypoint") {
		cfg.Entrypoint = []string{}
		if f.entrypoint != "" {
			cfg.Entrypoint = []string{f.entrypoint}
		}
	}
	for _, file := range f.envFile {
		b, err := os.ReadFile(file)
		if err != nil {
			return containertypes.CreateRequest{}, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				cfg.Env = append(cfg.Env, expandEnv(line))
			}
		}
	}
	for _, e := range f.env {
		cfg.Env = append(cfg.Env, expandEnv(e))
	}
	if len(f.labels) > 0 {
		cfg.Labels = map[string]string{}
		for _, l := range f.labels {
			k, v, _ := strings.Cut(l, "=")
			cfg.Labels[k] = v
		}
	}
	host := &containertypes.HostConfig{Binds: f.volumes,
		Privileged: f.privileged, ReadonlyRootfs: f.readOnly, AutoRemove: f.rm, CapAdd: f.capAdd, CapDrop: f.capDrop,
		SecurityOpt: f.securityOpts, GroupAdd: f.groupAdd,
		LogConfig: containertypes.LogConfig{Type: f.logDriver}}
	if f.init {
		t := true
		host.Init = &t
	}
	if f.restart != "" && f.restart != "no" {
		p, err := parseRestart(f.restart)
		if err != nil {
			return containertypes.CreateRequest{}, err
		}
		host.RestartPolicy = p
	}
	if len(f.logOpts) > 0 {
		host.LogConfig.Config = map[string]string{}
		for _, o := range f.logOpts {
			k, v, _ := strings.Cut(o, "=")
			host.LogConfig.Config[k] = v
		}
	}
	for _, m := range f.mounts {
		mt, err := parseMountFlag(m)
		if err != nil {
			return containertypes.CreateRequest{}, err
		}
		host.Mounts = append(host.Mounts, mt)
	}
	for _, t := range f.tmpfs {
		if host.Tmpfs == nil {
			host.Tmpfs = map[string]string{}
		}
		dst, opts, _ := strings.Cut(t, ":")
		host.Tmpfs[dst] = opts
	}
	if len(f.sysctls) > 0 {
		host.Sysctls = map[string]string{}
		for _, s := range f.sysctls {
			k, v, _ := strings.Cut(s, "=")
			host.Sysctls[k] = v
		}
	}
	r := &host.Resources
	if err := f.resourceFlags.apply(fs, r); err != nil {
		return containertypes.CreateRequest{}, err
	}
	var err error
	if host.ShmSize, err = sizeFlag("shm-size", f.shmSize); err != nil {
		return containertypes.CreateRequest{}, err
	}
	r.DeviceCgroupRules = f.deviceRules
	for _, d := range f.devices {
		parts := strings.Split(d, ":")
		dm := containertypes.DeviceMapping{PathOnHost: parts[0], PathInContainer: parts[0], CgroupPermissions: "rwm"}
		if len(parts) > 1 {
			dm.PathInContainer = parts[1]
		}
		if len(parts) > 2 {
			dm.CgroupPermissions = parts[2]
		}
		r.Devices = append(r.Devices, dm)
	}
	for _, t := range []struct {
		flag  string
		vals  []string
		bytes bool
		dst   *[]*blkiodev.ThrottleDevice
	}{
		{"device-read-bps", f.readBps, true, &r.BlkioDeviceReadBps}, {"device-write-bps", f.writeBps, true, &r.BlkioDeviceWriteBps},
		{"device-read-iops", f.readIOps, false, &r.BlkioDeviceReadIOps}, {"device-write-iops", f.writeIOps, false, &r.BlkioDeviceWriteIOps},
	} {
		for _, v := range t.vals {
			path, rate, ok := strings.Cut(v, ":")
			var n uint64
			if ok && strings.HasPrefix(path, "/dev/") {
				if t.bytes {
					var b int64
					if b, err = units.RAMInBytes(rate); b < 0 {
						err = errors.New("negative")
					}
					n = uint64(b)
				} else {
					n, err = strconv.ParseUint(rate, 10, 64)
				}
			}
			if !ok || !strings.HasPrefix(path, "/dev/") || err != nil {
				return containertypes.CreateRequest{}, usageError{fmt.Sprintf("invalid argument %q for \"--%s\" flag: want /dev/DEVICE:RATE", v, t.flag)}
			}
			*t.dst = append(*t.dst, &blkiodev.ThrottleDevice{Path: path, Rate: n})
		}
	}
	for _, u := range f.ulimits {
		ul, err := units.ParseUlimit(u)
		if err != nil {
			return containertypes.CreateRequest{}, usageError{fmt.Sprintf("invalid argument %q for \"--ulimit\" flag: %v", u, err)}
		}
		r.Ulimits = append(r.Ulimits, &containertypes.Ulimit{Name: ul.Name, Hard: ul.Hard, Soft: ul.Soft})
	}
	req := containertypes.CreateRequest{Config: cfg, HostConfig: host}
	return req, f.netFlags.apply(&req)
}

func expandEnv(e string) string {
	if strings.Contains(e, "=") {
		return e
	}
	if v, ok := os.LookupEnv(e); ok {
		return e + "=" + v
	}
	return e
}

// parseMountFlag reads --mount type=bind,source=/a,target=/b,readonly.
func parseMountFlag(s string) (mount.Mount, error) {
	m := mount.Mount{Type: mount.TypeVolume}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "type":
			m.Type = mount.Type(v)
		case "source", "src":
			m.Source = v
		case "target", "destination", "dst":
			m.Target = v
		case "readonly", "ro":
			m.ReadOnly = v == "" || v == "true" || v == "1"
		case "tmpfs-size":
			n, err := units.RAMInBytes(v)
			if err != nil {
				return m, usageError{fmt.Sprintf("invalid tmpfs-size %q", v)}
			}
			if m.TmpfsOptions == nil {
				m.TmpfsOptions = &mount.TmpfsOptions{}
			}
			m.TmpfsOptions.SizeBytes = n
		case "bind-propagation":
			m.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(v)}
		default:
			return m, usageError{fmt.Sprintf("unexpected key '%s' in '%s'", k, kv)}
		}
	}
	return m, nil
}

func runCreate(ctx context.Context, e *env, args []string) error {
	fs := e.flags("create", "create [OPTIONS] IMAGE [COMMAND] [ARG...]")
	fs.SetInterspersed(false)
	var f runFlags
	f.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return usageError{`"balena-engine create" requires at least 1 argument.`}
	}
	f.detach = true
	req, err := f.request(fs, fs.Args())
	if err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	resp, err := c.ContainerCreate(ctx, f.name, req)
	if err != nil {
		return err
	}
	for _, w := range resp.Warnings {
		fmt.Fprintln(e.stderr, "WARNING: "+w)
	}
	fmt.Fprintln(e.stdout, resp.ID)
	return nil
}

// runFailure reports why "run" could not run the container, with the
// docker CLI's exit codes: 127 for a command not found, 126 for one that
// cannot be executed, 125 for anything else the engine refused.
func runFailure(e *env, err error) error {
	fmt.Fprintln(e.stderr, err)
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory"):
		return containerExit{127}
	case strings.Contains(msg, "permission denied"):
		return containerExit{126}
	}
	return containerExit{125}
}

// containerExit carries a container's exit code to the process's.
type containerExit struct{ code int }

func (e containerExit) Error() string { return "" }

func runRun(ctx context.Context, e *env, args []string) error {
	fs := e.flags("run", "run [OPTIONS] IMAGE [COMMAND] [ARG...]")
	fs.SetInterspersed(false)
	var f runFlags
	f.register(fs)
	fs.BoolVarP(&f.detach, "detach", "d", false, "run container in background and print container ID")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return usageError{`"balena-engine run" requires at least 1 argument.`}
	}
	if !f.detach {
		if err := e.checkTTYInput(f.tty, f.interactive); err != nil {
			return err
		}
	}
	req, err := f.request(fs, fs.Args())
	if err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	resp, err := c.ContainerCreate(ctx, f.name, req)
	if err != nil {
		return runFailure(e, err)
	}
	for _, w := range resp.Warnings {
		fmt.Fprintln(e.stderr, "WARNING: "+w)
	}
	id := resp.ID
	if f.detach {
		if err := c.ContainerPost(ctx, id, "start", nil); err != nil {
			return runFailure(e, err)
		}
		fmt.Fprintln(e.stdout, id)
		return nil
	}
	q := url.Values{"stream": {"1"}, "stdout": {"1"}, "stderr": {"1"}}
	if f.interactive {
		q.Set("stdin", "1")
	}
	out, err := c.ContainerAttach(ctx, id, q)
	if err != nil {
		return err
	}
	defer out.Close()
	cond := "next-exit"
	if f.rm {
		cond = "removed"
	}
	wait, err := c.ContainerWait(ctx, id, cond)
	if err != nil {
		return err
	}
	if err := c.ContainerPost(ctx, id, "start", nil); err != nil {
		return runFailure(e, err)
	}
	if f.tty && f.interactive {
		defer e.rawInput()()
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- e.attachIO(sctx, out, f.tty, f.interactive, func(h, w uint16) {
			c.ContainerPost(sctx, id, "resize", sizeQuery(h, w))
		})
	}()
	var code int
	waited := make(chan struct{})
	go func() {
		code, err = wait()
		close(waited)
	}()
	select {
	case aerr := <-done:
		if errors.Is(aerr, stdstream.ErrDetached) {
			return nil // the container runs on; the docker CLI says nothing either
		}
		<-waited
	case <-waited:
		select {
		case <-done:
		case <-time.After(2 * time.Second): // the stream ends with the container
		}
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return containerExit{code}
	}
	return nil
}

func eachContainer(ctx context.Context, e *env, ids []string, fn func(*client.Client, string) error) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	var errs []string
	for _, id := range ids {
		if err := fn(c, id); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		fmt.Fprintln(e.stdout, id)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

func runStart(ctx context.Context, e *env, args []string) error {
	fs := e.flags("start", "start [OPTIONS] CONTAINER [CONTAINER...]")
	attach := fs.BoolP("attach", "a", false, "attach STDOUT/STDERR and forward signals")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{`"balena-engine start" requires at least 1 argument.`}
	}
	if *attach {
		c, err := e.connect()
		if err != nil {
			return err
		}
		id := fs.Arg(0)
		out, err := c.ContainerAttach(ctx, id, url.Values{"stream": {"1"}, "stdout": {"1"}, "stderr": {"1"}})
		if err != nil {
			return err
		}
		defer out.Close()
		wait, err := c.ContainerWait(ctx, id, "next-exit")
		if err != nil {
			return err
		}
		if err := c.ContainerPost(ctx, id, "start", nil); err != nil {
			return err
		}
		go stdstream.Demux(out, e.stdout, e.stderr)
		code, err := wait()
		if err != nil {
			return err
		}
		if code != 0 {
			return containerExit{code}
		}
		return nil
	}
	return eachContainer(ctx, e, fs.Args(), func(c *client.Client, id string) error { return c.ContainerPost(ctx, id, "start", nil) })
}

func runStopLike(op string) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		fs := e.flags(op, op+" [OPTIONS] CONTAINER [CONTAINER...]")
		t := fs.IntP("time", "t", -1, "seconds to wait before killing the container")
		sig := fs.StringP("signal", "s", "", "signal to send to the container")
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return usageError{fmt.Sprintf(`"balena-engine %s" requires at least 1 argument.`, op)}
		}
		q := url.Values{}
		if fs.Changed("time") {
			q.Set("t", strconv.Itoa(*t))
		}
		if *sig != "" {
			q.Set("signal", *sig)
		}
		return eachContainer(ctx, e, fs.Args(), func(c *client.Client, id string) error { return c.ContainerPost(ctx, id, op, q) })
	}
}

func runRm(ctx context.Context, e *env, args []string) error {
	fs := e.flags("rm", "rm [OPTIONS] CONTAINER [CONTAINER...]")
	force := fs.BoolP("force", "f", false, "force the removal of a running container (uses SIGKILL)")
	vols := fs.BoolP("volumes", "v", false, "remove anonymous volumes associated with the container")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{`"balena-engine rm" requires at least 1 argument.`}
	}
	return eachContainer(ctx, e, fs.Args(), func(c *client.Client, id string) error { return c.ContainerRemove(ctx, id, *force, *vols) })
}

func runWait(ctx context.Context, e *env, args []string) error {
	fs := e.flags("wait", "wait CONTAINER [CONTAINER...]")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{`"balena-engine wait" requires at least 1 argument.`}
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	for _, id := range fs.Args() {
		wait, err := c.ContainerWait(ctx, id, "not-running")
		if err != nil {
			return err
		}
		code, err := wait()
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, code)
	}
	return nil
}

func runExport(ctx context.Context, e *env, args []string) error {
	fs := e.flags("export", "export [OPTIONS] CONTAINER")
	output := fs.StringP("output", "o", "", "write to a file, instead of STDOUT")
	if err := parseExact(fs, args, 1); err != nil {
		return err
	}
	return writeArchive(e, *output, "failed to export container", func(c *client.Client) (io.ReadCloser, error) {
		return c.ContainerExport(ctx, fs.Arg(0))
	})
}

func runDiff(ctx context.Context, e *env, args []string) error {
	fs := e.flags("diff", "diff CONTAINER")
	c, err := e.parseConnect(fs, args, 1)
	if err != nil {
		return err
	}
	changes, err := c.ContainerChanges(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	for _, ch := range changes {
		fmt.Fprintf(e.stdout, "%s %s\n", ch.Kind, ch.Path)
	}
	return nil
}

// parseRestart reads a --restart value: NAME or NAME:MAX-RETRIES.
func parseRestart(v string) (containertypes.RestartPolicy, error) {
	name, max, _ := strings.Cut(v, ":")
	p := containertypes.RestartPolicy{Name: containertypes.RestartPolicyMode(name)}
	if max != "" {
		n, err := strconv.Atoi(max)
		if err != nil {
			return p, usageError{fmt.Sprintf("invalid restart policy %q", v)}
		}
		p.MaximumRetryCount = n
	}
	return p, nil
}

// runUpdate changes containers' cgroup limits and restart policy.
func runUpdate(ctx context.Context, e *env, args []string) error {
	fs := e.flags("update", "update [OPTIONS] CONTAINER [CONTAINER...]")
	restart := fs.String("restart", "", "restart policy to apply when a container exits")
	var rf resourceFlags
	rf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return usageError{`"balena-engine update" requires at least 1 argument.`}
	}
	if fs.NFlag() == 0 {
		return usageError{"you must provide one or more flags when using this command"}
	}
	var u containertypes.UpdateConfig
	if err := rf.apply(fs, &u.Resources); err != nil {
		return err
	}
	if *restart != "" {
		p, err := parseRestart(*restart)
		if err != nil {
			return err
		}
		u.RestartPolicy = p
	}
	return eachContainer(ctx, e, fs.Args(), func(c *client.Client, id string) error {
		warnings, err := c.ContainerUpdate(ctx, id, u)
		for _, w := range warnings {
			fmt.Fprintln(e.stderr, w)
		}
		return err
	})
}

func runRename(ctx context.Context, e *env, args []string) error {
	fs := e.flags("rename", "rename CONTAINER NEW_NAME")
	c, err := e.parseConnect(fs, args, 2)
	if err != nil {
		return err
	}
	return c.ContainerPost(ctx, fs.Arg(0), "rename", url.Values{"name": {fs.Arg(1)}})
}

func runLogs(ctx context.Context, e *env, args []string) error {
	fs := e.flags("logs", "logs [OPTIONS] CONTAINER")
	follow := fs.BoolP("follow", "f", false, "follow log output")
	timestamps := fs.BoolP("timestamps", "t", false, "show timestamps")
	tail := fs.StringP("tail", "n", "all", "number of lines to show from the end of the logs")
	since := fs.String("since", "", "show logs since timestamp or relative duration (42m)")
	until := fs.String("until", "", "show logs before a timestamp or relative duration")
	if err := parseExact(fs, args, 1); err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "tail": {*tail}, "follow": {fmt.Sprint(*follow)},
		"timestamps": {fmt.Sprint(*timestamps)}, "since": {*since}, "until": {*until}}
	body, err := c.ContainerLogs(ctx, fs.Arg(0), q)
	if err != nil {
		return err
	}
	defer body.Close()
	return stdstream.Demux(body, e.stdout, e.stderr)
}

type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Status, State, Ports, Names, Labels string
}

func runPs(ctx context.Context, e *env, args []string) error {
	fs := e.flags("ps", "ps [OPTIONS]")
	all := fs.BoolP("all", "a", false, "show all containers (default shows just running)")
	quiet := fs.BoolP("quiet", "q", false, "only display container IDs")
	noTrunc := fs.Bool("no-trunc", false, "don't truncate output")
	format := fs.String("format", "", "format output using a Go template")
	filter := fs.StringArrayP("filter", "f", nil, "filter output based on conditions provided")
	latest := fs.BoolP("latest", "l", false, "show the latest created container")
	if err := parse(fs, args); err != nil {
		return err
	}
	q := url.Values{"all": {fmt.Sprint(*all || *latest)}}
	if err := addFilters(q, *filter); err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	list, err := c.ContainerList(ctx, q)
	if err != nil {
		return err
	}
	if *latest && len(list) > 1 {
		list = list[:1]
	}
	if *quiet {
		for _, s := range list {
			id := s.ID
			if !*noTrunc {
				id = id[:12]
			}
			fmt.Fprintln(e.stdout, id)
		}
		return nil
	}
	f, err := newFormatter(e.stdout, *format, "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
		map[string]string{"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
			"RunningFor": "CREATED", "Status": "STATUS", "State": "STATE", "Ports": "PORTS", "Names": "NAMES", "Labels": "LABELS"})
	if err != nil {
		return err
	}
	for _, s := range list {
		created := time.Unix(s.Created, 0)
		r := psRow{ID: s.ID, Image: s.Image, Command: strconv.Quote(s.Command), CreatedAt: created.Format("2006-01-02 15:04:05 -0700 MST"),
			RunningFor: units.HumanDuration(time.Since(created)) + " ago", Status: s.Status, State: string(s.State), Ports: displayPorts(s.Ports)}
		var names []string
		for _, n := range s.Names {
			names = append(names, strings.TrimPrefix(n, "/"))
		}
		r.Names = strings.Join(names, ",")
		var labels []string
		for k, v := range s.Labels {
			labels = append(labels, k+"="+v)
		}
		r.Labels = strings.Join(labels, ",")
		if !*noTrunc {
			r.ID = r.ID[:12]
			if len(s.Command) > 20 {
				r.Command = strconv.Quote(s.Command[:19] + "…")
			}
		}
		if err := f.row(r); err != nil {
			return err
		}
	}
	return f.flush()
}

func runContainerPrune(ctx context.Context, e *env, args []string) error {
	fs := e.flags("container", "container prune [OPTIONS]")
	force := fs.BoolP("force", "f", false, "do not prompt for confirmation")
	if err := parse(fs, args); err != nil {
		return err
	}
	if !*force && !confirm(e, "WARNING! This will remove all stopped containers.") {
		return nil
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	resp, err := c.Do(ctx, "POST", "/containers/prune", nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var rep containertypes.PruneReport
	json.NewDecoder(resp.Body).Decode(&rep)
	section(e, "Deleted Containers:", rep.ContainersDeleted)
	fmt.Fprintln(e.stdout, "Total reclaimed space: "+units.HumanSize(float64(rep.SpaceReclaimed)))
	return nil
}

var containerSubcommands = map[string]func(context.Context, *env, []string) error{
	"run": runRun, "create": runCreate, "start": runStart, "stop": runStopLike("stop"), "restart": runStopLike("restart"),
	"kill": runStopLike("kill"), "rm": runRm, "remove": runRm, "ls": runPs, "list": runPs, "ps": runPs, "logs": runLogs,
	"wait": runWait, "rename": runRename, "inspect": runInspect, "prune": runContainerPrune, "exec": runExec,
	"pause": runSimple("pause"), "unpause": runSimple("unpause"), "update": runUpdate,
	"export": runExport, "diff": runDiff, "attach": runAttach, "top": runTop, "stats": runStats, "cp": runCp, "port": runPort,
}

func runContainer(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "container", "Manage containers", containerSubcommands, args)
}

func runExec(ctx context.Context, e *env, args []string) error {
	fs := e.flags("exec", "exec [OPTIONS] CONTAINER COMMAND [ARG...]")
	fs.SetInterspersed(false)
	interactive := fs.BoolP("interactive", "i", false, "keep STDIN open even if not attached")
	tty := fs.BoolP("tty", "t", false, "allocate a pseudo-TTY")
	detach := fs.BoolP("detach", "d", false, "detached mode: run command in the background")
	envs := fs.StringArrayP("env", "e", nil, "set environment variables")
	user := fs.StringP("user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	workdir := fs.StringP("workdir", "w", "", "working directory inside the container")
	privileged := fs.Bool("privileged", false, "give extended privileges to the command")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return usageError{`"balena-engine exec" requires at least 2 arguments.`}
	}
	if *privileged {
		return errors.New("exec --privileged is not implemented yet")
	}
	if !*detach {
		if err := e.checkTTYInput(*tty, *interactive); err != nil {
			return err
		}
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	var env []string
	for _, v := range *envs {
		env = append(env, expandEnv(v))
	}
	req := containertypes.ExecCreateRequest{Cmd: fs.Args()[1:], Env: env, User: *user, WorkingDir: *workdir, Tty: *tty,
		AttachStdin: *interactive && !*detach, AttachStdout: !*detach, AttachStderr: !*detach}
	id, err := c.ExecCreate(ctx, fs.Arg(0), req)
	if err != nil {
		return err
	}
	if *detach {
		body, _ := json.Marshal(containertypes.ExecStartRequest{Detach: true})
		resp, err := c.Do(ctx, "POST", "/exec/"+id+"/start", nil, strings.NewReader(string(body)))
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	body, _ := json.Marshal(containertypes.ExecStartRequest{Tty: *tty})
	conn, err := c.Hijack(ctx, "/exec/"+id+"/start", body)
	if err != nil {
		return err
	}
	defer conn.Close()
	if *tty && *interactive {
		defer e.rawInput()()
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err = e.attachIO(sctx, conn, *tty, *interactive, func(h, w uint16) {
		if resp, err := c.Do(sctx, "POST", "/exec/"+id+"/resize", sizeQuery(h, w), nil); err == nil {
			resp.Body.Close()
		}
	})
	if err != nil {
		return err
	}
	st, err := c.ExecInspect(ctx, id)
	if err != nil {
		return err
	}
	if st.ExitCode != nil && *st.ExitCode != 0 {
		return containerExit{*st.ExitCode}
	}
	return nil
}

// runSimple is a command that POSTs one operation to each container named.
func runSimple(op string) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		fs := e.flags(op, op+" CONTAINER [CONTAINER...]")
		if err := parse(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return usageError{fmt.Sprintf(`"balena-engine %s" requires at least 1 argument.`, op)}
		}
		return eachContainer(ctx, e, fs.Args(), func(c *client.Client, id string) error { return c.ContainerPost(ctx, id, op, nil) })
	}
}

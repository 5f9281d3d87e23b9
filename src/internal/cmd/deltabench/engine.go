package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/balena-os/balena-engine/src/client"
	"github.com/balena-os/balena-engine/src/internal/mounts"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// daemon is a balena-engine daemon of the benchmark: its socket, PID file
// and exec root in dir, its data root wherever the caller says (kept
// across restarts), the host's network untouched.
type daemon struct {
	engine, dir, root, cgroup string
	sock, execRoot            string
	cmd                       *exec.Cmd
	done                      chan struct{}
	log                       *os.File
}

func startDaemon(engine, dir, root, cgroup string) (*daemon, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	d := &daemon{engine: engine, dir: dir, root: root, cgroup: cgroup,
		sock: filepath.Join(dir, "api.sock"), execRoot: filepath.Join(dir, "exec")}
	cfg := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o644); err != nil {
		return nil, err
	}
	var err error
	if d.log, err = os.OpenFile(filepath.Join(dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return nil, err
	}
	d.cmd = exec.Command(engine, "daemon", "--data-root", root, "--exec-root", d.execRoot, "-H", "unix://"+d.sock,
		"--pidfile", filepath.Join(dir, "engine.pid"), "--config-file", cfg, "--cgroup-parent", cgroup,
		"--bridge=none", "--iptables=false", "--ip-forward=false")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	// Its own process group: a Ctrl-C reaches the benchmark, which stops
	// the daemon itself, in order.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		d.log.Close()
		return nil, err
	}
	d.done = make(chan struct{})
	go func() { d.cmd.Wait(); close(d.done) }()
	c, err := client.New("unix://" + d.sock)
	if err != nil {
		d.stop()
		return nil, err
	}
	defer c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Ping(ctx)
		cancel()
		if err == nil {
			return d, nil
		}
		select {
		case <-d.done:
			b, _ := os.ReadFile(d.log.Name())
			d.stop()
			return nil, fmt.Errorf("daemon exited at start: %s", tail(string(b), 2000))
		default:
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("daemon did not answer within 60 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// stop ends the daemon (SIGTERM, SIGKILL after 60 s), then the container
// monitor if one was started (it outlives the daemon by design), and
// detaches what is left mounted below its directories.
func (d *daemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		fmt.Fprintf(os.Stderr, "deltabench: daemon %d did not stop within 60 s of SIGTERM: killed\n", d.pid())
		d.cmd.Process.Kill()
		<-d.done
	}
	if b, err := os.ReadFile(filepath.Join(d.execRoot, "monitor", "monitor.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
			for i := 0; i < 200 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	mounts.DetachUnder(d.dir)
	mounts.DetachUnder(d.root)
	d.log.Close()
	d.cmd = nil
}

// cli runs our CLI against the daemon.
func (d *daemon) cli(ctx context.Context, args ...string) (string, error) {
	return command(ctx, "", nil, d.engine, append([]string{"-H", "unix://" + d.sock}, args...)...)
}

// cliStdin runs our CLI with stdin fed by write.
func (d *daemon) cliStdin(ctx context.Context, write func(io.Writer) error, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, d.engine, append([]string{"-H", "unix://" + d.sock}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	pw, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	werr := write(pw)
	pw.Close()
	err = cmd.Wait()
	if werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %v\n%s", d.engine, strings.Join(args, " "), err, tail(out.String(), 4000))
	}
	return out.String(), nil
}

func (d *daemon) imageID(ctx context.Context, ref string) (string, error) {
	out, err := d.cli(ctx, "image", "inspect", "--format", "{{.Id}}", ref)
	return strings.TrimSpace(out), err
}

// statusKiB reads a field of /proc/PID/status in KiB.
func statusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// rssWindow resets the process's peak RSS (VmHWM) to its RSS now and
// returns that, so that VmHWM after a request is the peak during it.
func rssWindow(pid int) (int64, error) {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return 0, fmt.Errorf("reset the peak RSS: %w", err)
	}
	return statusKiB(pid, "VmRSS")
}

// manifest fetches an image manifest from the registry.
func manifest(host, repo, tag string) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	req, _ := http.NewRequest("GET", "http://"+host+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, "+ocispec.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return m, err
	}
	if resp.StatusCode != 200 {
		return m, fmt.Errorf("manifest %s:%s: %s: %s", repo, tag, resp.Status, b)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("manifest %s:%s: %w", repo, tag, err)
	}
	return m, nil
}

func layerBytes(m ocispec.Manifest) int64 {
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// removeCgroups removes the benchmark's cgroup parent where a daemon made
// one (only that name: other engines may run on this machine).
func removeCgroups(parent string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup" + parent)
	more, _ := filepath.Glob("/sys/fs/cgroup/*" + parent)
	for _, d := range append(dirs, more...) {
		os.Remove(d)
	}
}

// anonSampler samples a process's anonymous resident memory (RssAnon)
// every 20 ms until stopped, keeping its peak: what VmHWM says, without
// file pages.
type anonSampler struct {
	start, peak int64 // KiB
	stop, done  chan struct{}
}

func sampleAnon(pid int) *anonSampler {
	s := &anonSampler{stop: make(chan struct{}), done: make(chan struct{})}
	s.start, _ = statusKiB(pid, "RssAnon")
	s.peak = s.start
	go func() {
		defer close(s.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := statusKiB(pid, "RssAnon"); err == nil && v > s.peak {
				s.peak = v
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// end stops sampling and returns the peak's growth over the start, KiB.
func (s *anonSampler) end() int64 {
	close(s.stop)
	<-s.done
	return s.peak - s.start
}

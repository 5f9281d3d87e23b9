package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/balena-os/balena-engine/src/client"
	units "github.com/docker/go-units"
	containertypes "github.com/moby/moby/api/types/container"
)

// runTop prints a container's processes as "docker top" does: the
// daemon's titles and rows, aligned.
func runTop(ctx context.Context, e *env, args []string) error {
	fs := e.flags("top", "top CONTAINER [ps OPTIONS]")
	fs.SetInterspersed(false) // what follows the container is ps's
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return usageError{`"balena-engine top" requires at least 1 argument.`}
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	top, err := c.ContainerTop(ctx, fs.Arg(0), strings.Join(fs.Args()[1:], " "))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 20, 1, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(top.Titles, "\t"))
	for _, p := range top.Processes {
		fmt.Fprintln(tw, strings.Join(p, "\t"))
	}
	return tw.Flush()
}

// statsRow is a line of "stats", with the names Docker's --format
// templates use.
type statsRow struct {
	Container, ID, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs string
}

var statsHeaders = map[string]string{"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
	"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}

const statsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

// cpuPercent is the docker CLI's CPU %: the container's share of the
// host's CPU time between two samples, scaled to the CPUs online (so a
// container busy on two CPUs shows 200%).
func cpuPercent(pre, cur containertypes.CPUStats) float64 {
	cpuDelta := float64(cur.CPUUsage.TotalUsage) - float64(pre.CPUUsage.TotalUsage)
	systemDelta := float64(cur.SystemUsage) - float64(pre.SystemUsage)
	online := float64(cur.OnlineCPUs)
	if online == 0 {
		online = float64(len(cur.CPUUsage.PercpuUsage))
	}
	if systemDelta > 0 && cpuDelta > 0 {
		return cpuDelta / systemDelta * online * 100
	}
	return 0
}

// memUsage is the docker CLI's memory figure: the usage without the page
// cache that can be dropped at once (inactive files), as cadvisor and the
// CRI count it: total_inactive_file on cgroup v1, inactive_file on v2.
func memUsage(m containertypes.MemoryStats) uint64 {
	if v, ok := m.Stats["total_inactive_file"]; ok && v < m.Usage {
		return m.Usage - v
	}
	if v := m.Stats["inactive_file"]; v < m.Usage {
		return m.Usage - v
	}
	return m.Usage
}

// blockIO sums the bytes read and written over all devices.
func blockIO(b containertypes.BlkioStats) (read, write uint64) {
	for _, s := range b.IoServiceBytesRecursive {
		if s.Op == "" {
			continue
		}
		switch s.Op[0] {
		case 'r', 'R':
			read += s.Value
		case 'w', 'W':
			write += s.Value
		}
	}
	return read, write
}

// statsLine turns a sample into the row docker prints for it; container
// is the name or ID the user gave.
func statsLine(container string, s containertypes.StatsResponse, trunc bool) statsRow {
	r := statsRow{Container: container, ID: s.ID, Name: "--"}
	if trunc {
		r.ID = shortID(r.ID)
	}
	if len(s.Name) > 1 {
		r.Name = s.Name[1:]
	}
	mem, limit := float64(memUsage(s.MemoryStats)), float64(s.MemoryStats.Limit)
	memPerc := 0.0
	if limit != 0 {
		memPerc = mem / limit * 100
	}
	var rx, tx float64
	for _, n := range s.Networks {
		rx += float64(n.RxBytes)
		tx += float64(n.TxBytes)
	}
	br, bw := blockIO(s.BlkioStats)
	r.CPUPerc = fmt.Sprintf("%.2f%%", cpuPercent(s.PreCPUStats, s.CPUStats))
	r.MemUsage = units.BytesSize(mem) + " / " + units.BytesSize(limit)
	r.MemPerc = fmt.Sprintf("%.2f%%", memPerc)
	r.NetIO = units.HumanSizeWithPrecision(rx, 3) + " / " + units.HumanSizeWithPrecision(tx, 3)
	r.BlockIO = units.HumanSizeWithPrecision(float64(br), 3) + " / " + units.HumanSizeWithPrecision(float64(bw), 3)
	r.PIDs = fmt.Sprint(s.PidsStats.Current)
	return r
}

// goneLine is the row of a container whose stats could not be read (it
// stopped, or went), as docker shows one.
func goneLine(container, id string, trunc bool) statsRow {
	if trunc {
		id = shortID(id)
	}
	return statsRow{Container: container, ID: id, Name: "--", CPUPerc: "--", MemUsage: "-- / --", MemPerc: "--",
		NetIO: "--", BlockIO: "--", PIDs: "--"}
}

func runStats(ctx context.Context, e *env, args []string) error {
	fs := e.flags("stats", "stats [OPTIONS] [CONTAINER...]")
	all := fs.BoolP("all", "a", false, "show all containers (default shows just running)")
	noStream := fs.Bool("no-stream", false, "disable streaming stats and only pull the first result")
	noTrunc := fs.Bool("no-trunc", false, "do not truncate output")
	format := fs.String("format", "", "format output using a Go template")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	// Check the template before anything is fetched.
	if _, err := newFormatter(io.Discard, *format, statsTable, statsHeaders); err != nil {
		return err
	}
	names := fs.Args()
	if *noStream {
		return statsOnce(ctx, e, c, names, *all, *format, !*noTrunc)
	}
	return statsStream(ctx, e, c, names, *all, *format, !*noTrunc)
}

// statsTargets is what "stats" shows: the containers named, or the
// running ones (all with -a).
func statsTargets(ctx context.Context, c *client.Client, names []string, all bool) ([]string, error) {
	if len(names) > 0 {
		return names, nil
	}
	list, err := c.ContainerList(ctx, url.Values{"all": {fmt.Sprint(all)}})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(list))
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	return ids, nil
}

// statsOnce prints one sample of each container (--no-stream). The daemon
// answers each with the sample before it a second earlier, so the CPU %
// is over that second; the containers are asked together.
func statsOnce(ctx context.Context, e *env, c *client.Client, names []string, all bool, format string, trunc bool) error {
	targets, err := statsTargets(ctx, c, names, all)
	if err != nil {
		return err
	}
	rows := make([]statsRow, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, name := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := statsSample(ctx, c, name)
			if err != nil {
				errs[i] = err
				return
			}
			rows[i] = statsLine(name, s, trunc)
		}()
	}
	wg.Wait()
	f, err := newFormatter(e.stdout, format, statsTable, statsHeaders)
	if err != nil {
		return err
	}
	var msgs []string
	for i := range targets {
		if errs[i] != nil {
			msgs = append(msgs, errs[i].Error())
			continue
		}
		if err := f.row(rows[i]); err != nil {
			return err
		}
	}
	if err := f.flush(); err != nil {
		return err
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "\n"))
	}
	return nil
}

func statsSample(ctx context.Context, c *client.Client, name string) (containertypes.StatsResponse, error) {
	var s containertypes.StatsResponse
	body, err := c.ContainerStats(ctx, name, false)
	if err != nil {
		return s, err
	}
	defer body.Close()
	if err := json.NewDecoder(body).Decode(&s); err != nil {
		return s, fmt.Errorf("stats of %s: %w", name, err)
	}
	return s, nil
}

// statsCollector follows one container's stream of samples, keeping the
// latest as a row.
type statsCollector struct {
	mu   sync.Mutex
	row  statsRow
	done bool // the stream ended: the container stopped or went
}

func (sc *statsCollector) get() (statsRow, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.row, sc.done
}

func (sc *statsCollector) follow(ctx context.Context, c *client.Client, name string, trunc bool) {
	defer func() {
		sc.mu.Lock()
		sc.done = true
		sc.mu.Unlock()
	}()
	body, err := c.ContainerStats(ctx, name, true)
	if err != nil {
		return
	}
	defer body.Close()
	dec := json.NewDecoder(body)
	for {
		var s containertypes.StatsResponse
		if dec.Decode(&s) != nil {
			return
		}
		sc.mu.Lock()
		sc.row = statsLine(name, s, trunc)
		sc.mu.Unlock()
	}
}

// statsStream redraws the table every second until interrupted, as
// "docker stats" does: the screen cleared once, then each frame written
// over the last from the top left, each line and what is below the
// table erased. Without names, the running containers are listed again
// each time, so that new ones appear and stopped ones go.
func statsStream(ctx context.Context, e *env, c *client.Client, names []string, all bool, format string, trunc bool) error {
	collectors := map[string]*statsCollector{}
	var order []string
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watch := func(name string) {
		if _, ok := collectors[name]; ok {
			return
		}
		sc := &statsCollector{row: statsRow{Container: name, ID: name, Name: "--", CPUPerc: "0.00%", MemUsage: "0B / 0B",
			MemPerc: "0.00%", NetIO: "0B / 0B", BlockIO: "0B / 0B", PIDs: "0"}}
		if trunc {
			sc.row.ID = shortID(name)
		}
		collectors[name] = sc
		order = append(order, name)
		go sc.follow(sctx, c, name, trunc)
	}
	if len(names) > 0 {
		// Named containers must exist: a typo fails at once, as in docker.
		for _, n := range names {
			if _, err := c.ContainerInspect(ctx, n); err != nil {
				return err
			}
			watch(n)
		}
	}
	fmt.Fprint(e.stdout, "\033[2J")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if len(names) == 0 {
			ids, err := statsTargets(ctx, c, nil, all)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			live := map[string]bool{}
			for _, id := range ids {
				live[id] = true
				watch(id)
			}
			kept := order[:0]
			for _, id := range order {
				if live[id] {
					kept = append(kept, id)
				} else {
					delete(collectors, id)
				}
			}
			order = kept
		}
		var frame bytes.Buffer
		f, err := newFormatter(&frame, format, statsTable, statsHeaders)
		if err != nil {
			return err
		}
		for _, n := range order {
			row, done := collectors[n].get()
			if done && len(names) > 0 {
				row = goneLine(n, row.ID, false)
			}
			f.row(row)
		}
		f.flush()
		var out strings.Builder
		out.WriteString("\033[H")
		for _, line := range strings.Split(strings.TrimSuffix(frame.String(), "\n"), "\n") {
			out.WriteString(line + "\033[K\n")
		}
		out.WriteString("\033[J")
		if _, err := io.WriteString(e.stdout, out.String()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

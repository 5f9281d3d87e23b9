package runtime

import (
	"bufio"
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzStartRequest decodes a start request as the monitor's /start does.
// A request the handler accepts must map onto a libcontainer process
// (the first use of the spec's contents, before anything can fail
// cleanly), and must survive the trip through the record the monitor
// keeps on disk.
func FuzzStartRequest(f *testing.F) {
	full, _ := json.Marshal(&StartRequest{ID: "0123abc", Rootfs: "/var/lib/balena-engine/containers/0123abc/rootfs",
		LogDriver: "json-file", LogPath: "/x.log", LogMaxSize: 10 << 20, LogMaxFile: 3, OpenStdin: true,
		JournalFields: map[string]string{"CONTAINER_NAME": "app"},
		Spec: &specs.Spec{Root: &specs.Root{Path: "/"}, Process: &specs.Process{Args: []string{"sh"}, Cwd: "/",
			User:         specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10}},
			Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}},
			Rlimits:      []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}}}}})
	f.Add(full)
	f.Add([]byte(`{"ID":"x","Spec":{"root":{"path":"/"}}}`)) // no process
	f.Add([]byte(`{"ID":"x","Spec":{"process":{"rlimits":[{"type":"RLIMIT_BOGUS"}]}}}`))
	f.Add([]byte(`{"ID":"x","Spec":{"process":{"user":{"uid":4294967295}}}}`))
	f.Add([]byte(`{"ID":"x","Spec":null}`))
	f.Add([]byte(`{"ID":"","Spec":{}}`))
	f.Add([]byte(`{"ID":"x","Spec":{}} trailing`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req StartRequest
		if decodeStart(bytes.NewReader(body), &req) != nil {
			return
		}
		if _, err := process(req.Spec.Process); err != nil {
			return
		}
		rec := record{Version: StateVersion, Req: req}
		rec.Req.Spec = nil
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatalf("record of an accepted request: %v", err)
		}
		var back record
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("record read back: %v", err)
		}
		b2, _ := json.Marshal(back)
		if !bytes.Equal(b, b2) {
			t.Fatalf("record changed on its way back:\n%s\n%s", b, b2)
		}
	})
}

// FuzzExecRequest reads an exec request line as the monitor's /exec
// does. One it accepts, sent again as the daemon's client sends it (JSON
// and a newline, then the stdin bytes), must arrive unchanged, with the
// stdin that follows untouched.
func FuzzExecRequest(f *testing.F) {
	line, _ := json.Marshal(&ExecRequest{ContainerID: "0123abc", Args: []string{"sh", "-c", "echo\nhi"},
		Env: []string{"A=b"}, Cwd: "/", UID: 1, GID: 2, Groups: []uint32{3}, Stdin: true, Tty: true, ExecID: "e1"})
	f.Add(append(line, '\n'))
	f.Add([]byte("{}\nstdin bytes"))
	f.Add([]byte(`{"Args":["a\u0000b","\u2028"],"UID":-1}` + "\n"))
	f.Add([]byte(`{"ContainerID":"x"`))
	f.Add([]byte("\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		brw := bufio.NewReader(bytes.NewReader(in))
		l, err := brw.ReadBytes('\n')
		var req ExecRequest
		if err != nil || json.Unmarshal(l, &req) != nil {
			return
		}
		b, err := json.Marshal(&req)
		if err != nil {
			t.Fatal(err)
		}
		const stdin = "stdin\n{}\n"
		again := bufio.NewReader(bytes.NewReader(append(append(b, '\n'), stdin...)))
		l2, err := again.ReadBytes('\n')
		var back ExecRequest
		if err != nil || json.Unmarshal(l2, &back) != nil {
			t.Fatalf("request sent again not read: %q", l2)
		}
		if !reflect.DeepEqual(req, back) {
			t.Fatalf("request changed on the way: %+v, then %+v", req, back)
		}
		if rest, _ := again.ReadString(0); rest != stdin {
			t.Fatalf("stdin after the request read as %q", rest)
		}
	})
}

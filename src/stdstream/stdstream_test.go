package stdstream

import (
	"bytes"
	"io"
	"testing"
)

func TestFramesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	flushes := 0
	w := &Writer{W: &buf, Flush: func() error { flushes++; return nil }}
	w.Frame(Stdout, []byte("out\n"))
	io.WriteString(w.To(Stderr), "err\n")
	w.Frame(Stdout, nil)
	if flushes != 3 {
		t.Errorf("%d flushes for 3 frames", flushes)
	}
	raw := buf.Bytes()
	if s, p, err := ReadFrame(bytes.NewReader(raw)); err != nil || s != Stdout || string(p) != "out\n" {
		t.Errorf("first frame: %d %q %v", s, p, err)
	}
	var out, errb bytes.Buffer
	if err := Demux(bytes.NewReader(raw), &out, &errb); err != nil || out.String() != "out\n" || errb.String() != "err\n" {
		t.Errorf("demux: %q %q %v", out.String(), errb.String(), err)
	}
	if err := Demux(bytes.NewReader(raw[:len(raw)-10]), io.Discard, io.Discard); err == nil {
		t.Error("a stream cut inside a frame demuxed without error")
	}
	buf.Reset()
	w.Raw([]byte("terminal"))
	if buf.String() != "terminal" {
		t.Errorf("raw: %q", buf.String())
	}
}

package stdstream

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"
)

// FuzzReadFrame reads arbitrary bytes as a multiplexed stream, as the
// daemon reads the monitor's and a client the daemon's: every frame read
// must be what its header says, writing the frames again must give the
// bytes read, Demux must agree, and reading must cost memory in proportion
// to the bytes received, not to what a header claims.
func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	w := &Writer{W: &buf}
	w.Frame(Stdout, []byte("hello\n"))
	w.Frame(Stderr, []byte("oops\n"))
	w.Frame(Stdout, nil)
	f.Add(buf.Bytes())
	f.Add([]byte{0x7f, 0, 0, 0, 0, 0, 0, 2, '{', '}'})                 // an exec's exit frame
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 9, 'c', 'u', 't'})               // cut inside a payload
	f.Add([]byte{2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 'x'})             // a 4 GiB claim
	f.Add([]byte{1, 0, 0, 0, 0, 1, 0, 1, 'x', 'y', 1, 0, 0})           // just over the small size
	f.Add([]byte{1, 9, 9, 9, 0, 0, 0, 1, 'x', 2, 0, 0, 0, 0, 0, 0, 0}) // padding bytes set
	f.Fuzz(func(t *testing.T, data []byte) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		r := bytes.NewReader(data)
		var again, stdout, stderr bytes.Buffer
		fw := &Writer{W: &again}
		consumed := 0
		for {
			stream, p, err := ReadFrame(r)
			if err != nil {
				break
			}
			consumed += 8 + len(p)
			if want := binary.BigEndian.Uint32(data[consumed-len(p)-4:]); uint32(len(p)) != want {
				t.Fatalf("frame of %d bytes, header says %d", len(p), want)
			}
			fw.Frame(stream, p)
			if stream == Stderr {
				stderr.Write(p)
			} else {
				stdout.Write(p)
			}
		}
		runtime.ReadMemStats(&ms)
		// io.ReadAll doubles its buffer: a few times the input, plus
		// one small frame's allocation and the runtime's own.
		if a := ms.TotalAlloc - before; a > 4*uint64(len(data))+smallFrame+1<<20 {
			t.Fatalf("reading %d bytes allocated %d", len(data), a)
		}
		got := again.Bytes()
		for off := 0; off < len(got); {
			// The three bytes after the stream number are padding.
			hdr := append([]byte{data[off]}, 0, 0, 0)
			hdr = append(hdr, data[off+4:off+8]...)
			if !bytes.Equal(got[off:off+8], hdr) {
				t.Fatalf("header at %d written as %x, read from %x", off, got[off:off+8], data[off:off+8])
			}
			n := int(binary.BigEndian.Uint32(hdr[4:]))
			if !bytes.Equal(got[off+8:off+8+n], data[off+8:off+8+n]) {
				t.Fatalf("payload at %d differs", off)
			}
			off += 8 + n
		}

		var dout, derr bytes.Buffer
		err := Demux(bytes.NewReader(data), &dout, &derr)
		if (err == nil) != (consumed == len(data)) {
			t.Fatalf("demux: %v, with %d of %d bytes in whole frames", err, consumed, len(data))
		}
		// Demux also hands on a cut payload's first part.
		if !bytes.HasPrefix(dout.Bytes(), stdout.Bytes()) || !bytes.HasPrefix(derr.Bytes(), stderr.Bytes()) {
			t.Fatalf("demux's output differs from the frames read")
		}
		if err == nil && (dout.Len() != stdout.Len() || derr.Len() != stderr.Len()) {
			t.Fatalf("demux wrote more than the frames")
		}
	})
}

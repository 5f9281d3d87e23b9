package layer

import (
	"bytes"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The pacer owns the descriptors of finished files until it drops their
// pages, and batches them by bytes: small files wait in the fresh batch, a
// full batch starts writeback and goes to the dropper, and flush returns
// when every file is dropped and closed.
func TestPacerBatchesFilesByBytes(t *testing.T) {
	dir := t.TempDir()
	p := newPacer(4 << 20) // batches of 1 MiB
	create := func(i, size int) {
		t.Helper()
		fd, err := unix.Open(filepath.Join(dir, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		n, dropped, err := p.copy(fd, bytes.NewReader(make([]byte, size)))
		if err != nil || n != int64(size) || dropped != 0 {
			t.Fatalf("copy: %d bytes, %d dropped, %v", n, dropped, err)
		}
		p.done(fd, n, dropped)
	}
	for i := range 3 {
		create(i, 10000)
	}
	if len(p.fresh) != 3 || p.freshSz != 30000 || p.drops != nil {
		t.Fatalf("after 3 small files: %d fresh (%d bytes), dropper %v", len(p.fresh), p.freshSz, p.drops != nil)
	}
	for _, f := range p.fresh {
		var st unix.Stat_t
		if err := unix.Fstat(f.fd, &st); err != nil || st.Size != 10000 {
			t.Errorf("pending descriptor %d: fstat %v, size %d", f.fd, err, st.Size)
		}
	}
	// A file that fills the batch starts it: the dropper has it.
	first := p.fresh[0].fd
	create(3, 1<<20-30000)
	if len(p.fresh) != 0 || p.freshSz != 0 || p.drops == nil {
		t.Fatalf("after a full batch: %d fresh (%d bytes), dropper %v", len(p.fresh), p.freshSz, p.drops != nil)
	}
	for i := 4; i < 4+maxPendingOpen; i++ {
		create(i, 100)
	}
	if len(p.fresh) != 0 {
		t.Fatalf("after %d more files: %d fresh", maxPendingOpen, len(p.fresh))
	}
	p.flush()
	if len(p.fresh) != 0 || p.drops != nil {
		t.Errorf("after flush: %d fresh, dropper still there: %v", len(p.fresh), p.drops != nil)
	}
	var st unix.Stat_t
	if err := unix.Fstat(first, &st); err != unix.EBADF {
		// The number may be reused by a later file: then it is not the
		// first one's.
		if err != nil || st.Size == 10000 {
			t.Errorf("the first batch's descriptor %d is still open after flush", first)
		}
	}
}

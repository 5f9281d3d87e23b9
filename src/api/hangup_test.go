package api

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A client's half-close is not a hang-up; its full close is, and a
// waiter learns it as it happens.
func TestWaitHangup(t *testing.T) {
	dir, err := os.MkdirTemp("", "hangup-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	rc, err := server.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	check := func() (gone bool) {
		rc.Control(func(fd uintptr) { gone = hungUp(fd) })
		return gone
	}

	client.(*net.UnixConn).CloseWrite() // docker attach with no input
	if n, err := io.Copy(io.Discard, server); n != 0 || err != nil {
		t.Fatalf("the client's input: %d bytes, %v", n, err)
	}
	if check() {
		t.Fatal("a half-closed client taken as gone")
	}
	if _, err := server.Write([]byte("still there")); err != nil {
		t.Fatalf("writing to a half-closed client: %v", err)
	}

	done := make(chan bool, 1)
	go func() { done <- waitHangup(server) }()
	client.Close()
	select {
	case gone := <-done:
		if !gone {
			t.Error("waitHangup returned without the hang-up")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client's close was not noticed")
	}

	// A connection closed on this side ends the wait, saying no hang-up.
	c2, _ := net.Dial("unix", l.Addr().String())
	defer c2.Close()
	s2, _ := l.Accept()
	go func() { done <- waitHangup(s2) }()
	s2.Close()
	select {
	case gone := <-done:
		if gone {
			t.Error("a close on this side taken for the client's")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("closing the connection did not end the wait")
	}
}

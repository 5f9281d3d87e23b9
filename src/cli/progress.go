package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// streamMessage is one line of a daemon's progress stream.
type streamMessage struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	Progress    string `json:"progress"`
	ID          string `json:"id"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Error string `json:"error"`
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// displayStream renders a progress stream as the docker CLI does: on a
// terminal one line per layer, rewritten in place; otherwise each change of
// status once, without the byte-by-byte updates. An error in the stream is
// returned.
func displayStream(r io.Reader, w io.Writer) error {
	tty := isTerminal(w)
	lines := map[string]int{} // layer ID -> line index, on a terminal
	n := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m streamMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return fmt.Errorf("bad progress message %q: %w", sc.Text(), err)
		}
		if m.ErrorDetail != nil || m.Error != "" {
			msg := m.Error
			if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
				msg = m.ErrorDetail.Message
			}
			return errors.New(msg)
		}
		text := m.Status
		if m.ID != "" {
			text = m.ID + ": " + m.Status
		}
		if !tty {
			if m.Progress == "" {
				fmt.Fprintln(w, text)
			}
			continue
		}
		if m.Progress != "" {
			text += " " + m.Progress
		}
		idx, seen := lines[m.ID]
		if m.ID == "" || !seen {
			if m.ID != "" {
				lines[m.ID] = n
			}
			n++
			fmt.Fprintf(w, "%s\n", text)
			continue
		}
		up := n - idx
		// Up to the layer's line, clear it, write, and back down.
		fmt.Fprintf(w, "\x1b[%dA\r\x1b[2K%s\r\x1b[%dB", up, text, up)
	}
	return sc.Err()
}

// displayLoad prints a load's "stream" lines and returns an error from it.
func displayLoad(r io.Reader, w io.Writer) error {
	dec := json.NewDecoder(r)
	for {
		var m streamMessage
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("bad progress message: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		fmt.Fprint(w, m.Stream)
	}
}

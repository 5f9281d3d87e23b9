package image

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/jsonstream"
)

// Message is one line of a progress stream, in the shape Docker's clients
// read: the docker CLI draws bars from progressDetail, older SDKs read the
// "progress" and "error" strings.
type Message struct {
	Stream      string               `json:"stream,omitempty"`
	Status      string               `json:"status,omitempty"`
	Detail      *jsonstream.Progress `json:"progressDetail,omitempty"`
	Progress    string               `json:"progress,omitempty"`
	ID          string               `json:"id,omitempty"`
	ErrorDetail *jsonstream.Error    `json:"errorDetail,omitempty"`
	Error       string               `json:"error,omitempty"`
	Aux         *json.RawMessage     `json:"aux,omitempty"`
}

// ErrorMessage is the closing line of a failed operation.
func ErrorMessage(err error) Message {
	return Message{ErrorDetail: &jsonstream.Error{Message: err.Error()}, Error: err.Error()}
}

// Progress receives progress messages. It may be called from several
// goroutines; nil discards.
type Progress func(Message)

func (p Progress) send(m Message) {
	if p != nil {
		p(m)
	}
}

// bar renders Docker's text progress bar, "[==>   ] 1.2MB/3.4MB".
func bar(current, total int64) string {
	if total <= 0 {
		return units.HumanSize(float64(current))
	}
	const width = 50
	n := int(float64(width) * float64(current) / float64(total))
	n = min(max(n, 0), width)
	arrow := strings.Repeat("=", n)
	if n < width {
		arrow += ">"
	}
	return fmt.Sprintf("[%-*s] %8s/%s", width, arrow,
		units.HumanSizeWithPrecision(float64(current), 3), units.HumanSizeWithPrecision(float64(total), 3))
}

// counter counts bytes through a reader and reports them, at most every
// 100 ms, as Docker's "Downloading" lines.
type counter struct {
	mu       sync.Mutex
	progress Progress
	status   string // "Downloading" when empty
	bare     bool   // no status at all (balenaEngine's "Total" line)
	id       string
	total    int64
	current  int64
	last     time.Time
}

func (c *counter) add(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.current += int64(n)
	if time.Since(c.last) < 100*time.Millisecond && c.current < c.total {
		return
	}
	c.last = time.Now()
	status := c.status
	if status == "" && !c.bare {
		status = "Downloading"
	}
	c.progress.send(Message{Status: status, ID: c.id,
		Detail:   &jsonstream.Progress{Current: c.current, Total: c.total},
		Progress: bar(c.current, c.total)})
}

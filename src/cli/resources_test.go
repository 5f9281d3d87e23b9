package cli

import (
	"strings"
	"testing"
)

// The block I/O throttles make the request the docker CLI sends for
// them: the device's path and the rate (bytes from a size, IOs as a
// number).
func TestRunThrottleFlags(t *testing.T) {
	req, err := createRequest("--device-read-bps", "/dev/vda:1mb", "--device-write-bps", "/dev/vda:512k",
		"--device-read-iops", "/dev/sdb:100", "--device-write-iops", "/dev/vda:7")
	if err != nil {
		t.Fatal(err)
	}
	r := req.HostConfig.Resources
	got := asJSON([]any{r.BlkioDeviceReadBps, r.BlkioDeviceWriteBps, r.BlkioDeviceReadIOps, r.BlkioDeviceWriteIOps})
	want := `[[{"Path":"/dev/vda","Rate":1048576}],[{"Path":"/dev/vda","Rate":524288}],[{"Path":"/dev/sdb","Rate":100}],[{"Path":"/dev/vda","Rate":7}]]`
	if got != want {
		t.Errorf("throttles %s, want %s", got, want)
	}
	for _, bad := range [][]string{
		{"--device-read-bps", "/dev/vda"},
		{"--device-read-bps", "vda:1mb"},
		{"--device-write-bps", "/dev/vda:-1"},
		{"--device-read-iops", "/dev/vda:1k"},
	} {
		if _, err := createRequest(bad...); err == nil || !strings.Contains(err.Error(), "want /dev/DEVICE:RATE") {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

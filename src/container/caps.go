package container

import (
	"strings"
	"sync"

	"github.com/moby/sys/capability"
)

// grantableCaps is allCaps less what the engine itself lacks: a process
// cannot hand out a capability outside its own bounding set, so
// --privileged and --cap-add ALL in an engine started with fewer (a
// sandbox, a systemd unit's CapabilityBoundingSet=, an older kernel) give
// what there is rather than fail every start.
var grantableCaps = sync.OnceValue(func() []string {
	have := map[string]bool{}
	for _, c := range capability.ListKnown() {
		if ok, err := capability.GetBound(c); err == nil && ok {
			have["CAP_"+strings.ToUpper(c.String())] = true
		}
	}
	var out []string
	for _, c := range allCaps {
		if have[c] {
			out = append(out, c)
		}
	}
	return out
})

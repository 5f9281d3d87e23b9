package container

import (
	"testing"

	"github.com/balena-os/balena-engine/src/errdefs"
	"github.com/balena-os/balena-engine/src/network"
	containertypes "github.com/moby/moby/api/types/container"
	networktypes "github.com/moby/moby/api/types/network"
)

func net(name, driver string) *network.Network {
	n := &network.Network{}
	n.Name, n.Driver = name, driver
	return n
}

func TestConnectable(t *testing.T) {
	app := net("app", network.DriverBridge)
	host := net("host", network.DriverHost)
	none := net("none", network.DriverNull)
	for _, c := range []struct {
		mode         containertypes.NetworkMode
		disconnected bool
		n            *network.Network
		want         string // "" for none
	}{
		{"bridge", false, app, ""},
		{"other", false, app, ""},
		// Left with no network by a disconnect: connected again (Compose
		// 1.29 does this to every container it creates).
		{"none", true, app, ""},
		{"none", false, app, "container cannot be connected to multiple networks with one of the networks in private (none) mode"},
		{"bridge", false, none, "container cannot be connected to multiple networks with one of the networks in private (none) mode"},
		{"bridge", false, host, "container cannot be disconnected from host network or connected to host network"},
		{"host", false, app, "container sharing network namespace with another container or host cannot be connected to any other network"},
		{"container:abc", false, app, "container sharing network namespace with another container or host cannot be connected to any other network"},
	} {
		err := connectable(c.mode, c.disconnected, c.n)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s (disconnected %v) to %s: %v", c.mode, c.disconnected, c.n.Name, err)
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("%s (disconnected %v) to %s: %v, want %q", c.mode, c.disconnected, c.n.Name, err, c.want)
		case c.want != "" && errdefs.KindOf(err) != errdefs.KindInvalidParameter:
			t.Errorf("%s to %s: %v is not a 400", c.mode, c.n.Name, err)
		}
	}
}

// A container disconnected from the network it was created on, and from
// no other, can be connected to it again and joins it at its start
// (Compose 1.29 creates every container so); one created with --network
// none cannot.
func TestDisconnectConnectAgain(t *testing.T) {
	app := net("app", network.DriverBridge)
	r := &Container{HostConfig: &containertypes.HostConfig{NetworkMode: "app"},
		Networks: map[string]*networktypes.EndpointSettings{"app": {Aliases: []string{"web"}}}}
	leaveNetwork(r, app, true)
	if r.HostConfig.NetworkMode != "none" || !r.NetworkDisconnected || len(r.Networks) != 0 {
		t.Fatalf("after the disconnect: mode %q, disconnected %v, networks %v", r.HostConfig.NetworkMode, r.NetworkDisconnected, r.Networks)
	}
	if err := connectable(r.HostConfig.NetworkMode, r.NetworkDisconnected, app); err != nil {
		t.Fatal(err)
	}
	joinNetwork(r, "app", &networktypes.EndpointSettings{Aliases: []string{"web", "abc"}})
	if r.HostConfig.NetworkMode != "app" || r.NetworkDisconnected || len(r.Networks["app"].Aliases) != 2 {
		t.Fatalf("after the connect: mode %q, disconnected %v, networks %v", r.HostConfig.NetworkMode, r.NetworkDisconnected, r.Networks)
	}

	// Another network left: it becomes the mode, nothing is flagged.
	r = &Container{HostConfig: &containertypes.HostConfig{NetworkMode: "app"},
		Networks: map[string]*networktypes.EndpointSettings{"other": {}}}
	leaveNetwork(r, app, true)
	if r.HostConfig.NetworkMode != "other" || r.NetworkDisconnected {
		t.Fatalf("with another network: mode %q, disconnected %v", r.HostConfig.NetworkMode, r.NetworkDisconnected)
	}
}

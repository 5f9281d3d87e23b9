package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestSelectRole(t *testing.T) {
	cases := []struct {
		argv     []string
		role     role
		args     []string
		errMatch string
	}{
		{argv: []string{"balena-engine"}, role: roleClient, args: []string{}},
		{argv: []string{"/usr/bin/balena-engine", "version"}, role: roleClient, args: []string{"version"}},
		{argv: []string{"balena", "ps", "-a"}, role: roleClient, args: []string{"ps", "-a"}},
		{argv: []string{"balena-engine", "daemon", "-H", "unix:///x.sock"}, role: roleDaemon, args: []string{"-H", "unix:///x.sock"}},
		{argv: []string{"balena", "daemon"}, role: roleDaemon, args: []string{}},
		{argv: []string{"/usr/bin/balenad", "--debug"}, role: roleDaemon, args: []string{"--debug"}},
		{argv: []string{"balena-engine-daemon"}, role: roleDaemon, args: []string{}},
		// "daemon" only selects the role as the first argument.
		{argv: []string{"balena-engine", "--debug", "daemon"}, role: roleClient, args: []string{"--debug", "daemon"}},
		// balenad's arguments are its own, even one spelt "daemon".
		{argv: []string{"balenad", "daemon"}, role: roleDaemon, args: []string{"daemon"}},
		{argv: []string{"balena-engine", "__monitor", "--root", "/run/x"}, role: roleMonitor, args: []string{"--root", "/run/x"}},
		{argv: []string{"balenad", "__monitor"}, role: roleMonitor, args: []string{}},
		{argv: []string{"/sbin/docker-init", "--", "daemon"}, role: roleInit, args: []string{"--", "daemon"}},
		{argv: []string{"docker-init", "__monitor"}, role: roleInit, args: []string{"__monitor"}},
		{argv: []string{"/usr/bin/docker", "ps"}, role: roleClient, args: []string{"ps"}},
		{argv: []string{"/usr/local/bin/dockerd"}, errMatch: `unknown role "dockerd"`},
		{argv: []string{"balena-engine.new"}, errMatch: "unknown role"},
		{argv: nil, errMatch: "without argv[0]"},
	}
	for _, c := range cases {
		r, args, err := selectRole(c.argv)
		if c.errMatch != "" {
			if err == nil || !strings.Contains(err.Error(), c.errMatch) {
				t.Errorf("selectRole(%q): err = %v, want %q", c.argv, err, c.errMatch)
			}
			continue
		}
		if err != nil || r != c.role || !reflect.DeepEqual(args, c.args) {
			t.Errorf("selectRole(%q) = %v, %q, %v; want %v, %q", c.argv, r, args, err, c.role, c.args)
		}
	}
}

// Package firewall keeps the engine's IPv4 and IPv6 firewall rules equal to
// a desired state: masquerading for bridge networks, isolation between
// them, and published ports done entirely in the kernel with DNAT, so no
// userland proxy process runs per port (dockerd's --userland-proxy=false).
// On a small device a proxy per published port costs memory and a copy of
// every byte.
//
// New returns one of two backends behind the Firewall interface, as
// dockerd's --firewall-backend chooses:
//
//   - iptables (the default): iptables-restore and iptables-save, which the
//     legacy and the nf_tables variants of iptables both provide with the
//     same language; balenaOS ships iptables-legacy, desktops mostly the nft
//     one. Docker's chain names are kept so that tools written for Docker
//     keep working, above all anything that hooks into DOCKER-USER (balena's
//     device agent puts its own chain under it).
//   - nftables: nft -f, for images that have nftables and no iptables. The
//     engine owns one table per family, Docker 29's "ip docker-bridges" and
//     "ip6 docker-bridges".
//
// Both print the same rules (build in rules.go works them out once; each
// backend only writes them in its language), so the two behave alike packet
// for packet; TestTraffic sends the same packets through each.
//
// # IPv6
//
// IPv6 is done as Docker 27/28 do it with ip6tables on (and Docker 29 with
// nftables): the same layout in the other family, with ip6tables-restore
// and ip6tables-save, or the ip6 table. A family's rules cover the networks
// that have a subnet of it (Network.Subnet, Network.Subnet6) and the ports
// whose ContainerIP is of it; a container published on all addresses with
// both an IPv4 and an IPv6 address is two Ports. Masquerading is NAT66 for
// IPv6, Docker's default (the same Masquerade flag). The differences:
//
//   - the DNAT rules leave link-local sources alone ("! -s fe80::/10"), as
//     Docker's do;
//   - the jump from nat OUTPUT leaves ::1 alone ("! -d ::1/128"): IPv6 has
//     no route_localnet, so the kernel sends no packet from ::1 into a
//     bridge, and a port on [::1] is Docker's userland proxy's business
//     (which the engine does not run). Ports with the HostIP ::1, or with a
//     HostIP of the other family than ContainerIP (also the proxy's), are
//     skipped; a connection to [::1]:<hostPort> reaches whatever listens
//     there on the host, if anything.
//
// IPv6 costs nothing until a network has it: while none has, and the engine
// has put nothing into ip6tables (its record in StateDir is empty), no
// ip6tables program runs, not even to look for it, and missing ip6tables
// programs are no error. Once
// a network has IPv6, Apply fails without them (after applying the IPv4
// rules: each family is applied on its own). When no network has IPv6 any
// more, the engine's IPv6 chains and jumps are removed. With nftables the
// ip6 table is written in the same transaction as the ip table, and deleted
// in it when no network has IPv6; on a kernel without IPv6 in nf_tables the
// ip table is then written alone (Apply fails only if the state has IPv6).
//
// The sysctls are the caller's, as for IPv4: net.ipv6.conf.all.forwarding,
// bridge-nf-call-ip6tables for the hairpin, and ip6tables' FORWARD policy
// (IPTables.DropForwarded6).
//
// # The iptables layout
//
// The layout is Docker 28's for bridge networks with the userland proxy off,
// with the masquerade rules moved into an own nat chain. Chains the engine
// owns are rewritten whole (an iptables-restore --noflush input that declares
// an existing chain flushes it), in one run per change:
//
//	*filter
//	:DOCKER                    accepts to published ports, per port:
//	  -A DOCKER -d <ctrIP>/32 ! -i <br> -o <br> -p tcp -m tcp --dport <ctrPort> -j ACCEPT
//	:DOCKER-FORWARD            per non-internal network:
//	  -A DOCKER-FORWARD -o <br> -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
//	                           once, when there is a network:
//	  -A DOCKER-FORWARD -j DOCKER-ISOLATION-STAGE-1
//	                           per network:
//	  -A DOCKER-FORWARD -o <br> -j DOCKER                 (not for internal networks)
//	  -A DOCKER-FORWARD -i <br> ! -o <br> -j ACCEPT       (not for internal networks)
//	  -A DOCKER-FORWARD -s <from> -d <to> -i <br> -o <br> -p <proto> -m <proto> --dport <port> -j ACCEPT
//	                                                      (per legacy link's port, when ICC is off)
//	  -A DOCKER-FORWARD -i <br> -o <br> -j ACCEPT         (DROP when ICC is off)
//	:DOCKER-ISOLATION-STAGE-1  per internal network, first:
//	  -A DOCKER-ISOLATION-STAGE-1 -i <br> ! -o <br> -j DROP
//	  -A DOCKER-ISOLATION-STAGE-1 ! -i <br> -o <br> -j DROP
//	                           then per non-internal network:
//	  -A DOCKER-ISOLATION-STAGE-1 -i <br> ! -o <br> -j DOCKER-ISOLATION-STAGE-2
//	:DOCKER-ISOLATION-STAGE-2  once, then per non-internal network:
//	  -A DOCKER-ISOLATION-STAGE-2 -j DOCKER
//	  -A DOCKER-ISOLATION-STAGE-2 -o <br> -j DROP
//	*nat
//	:DOCKER                    per published port:
//	  -A DOCKER [-d <hostIP>/32] -p tcp -m tcp --dport <hostPort> -j DNAT --to-destination <ctrIP>:<ctrPort>
//	:DOCKER-POSTROUTING        per non-internal network:
//	  -A DOCKER-POSTROUTING -o <br> -m addrtype --src-type LOCAL -j MASQUERADE
//	  -A DOCKER-POSTROUTING -s <subnet> ! -o <br> -j MASQUERADE   (when masquerading)
//	                           per published port:
//	  -A DOCKER-POSTROUTING -s <ctrIP>/32 -d <ctrIP>/32 -p tcp -m tcp --dport <ctrPort> -j MASQUERADE
//
// ip6tables holds the same with IPv6 addresses (/128, [<ctrIP>]:<ctrPort>),
// the DNAT rules starting with "! -s fe80::/10".
//
// The order is Docker 28's (replies, then isolation, then per bridge), with
// one addition: traffic from one engine bridge to another is dropped in
// DOCKER-ISOLATION-STAGE-2, but only after the published-port accepts had
// their say there, so a container reaches a published port of a container on
// another network through the host's address (after DNAT), as it would
// through the userland proxy. Internal bridges are sealed before that and
// get no published ports and no masquerading.
//
// The DNAT rule has no "! -i <br>": with the proxy off the kernel is also
// what serves a container reaching a published port on its own bridge,
// itself included; the hairpin masquerade makes the reply come back through
// the host. The LOCAL masquerade makes a connection from the host to
// 127.0.0.1:<hostPort> routable into the bridge (with
// net.ipv4.conf.<br>.route_localnet set by the caller). A packet from
// outside to a container port that is not published falls through to the
// FORWARD chain's policy, which the caller sets.
//
// DOCKER-USER is created empty when it is missing and is never flushed: its
// rules belong to the user or the device agent; a packet that falls through
// it returns to FORWARD.
//
// Rules in the built-in chains are kept to jumps:
//
//	-A FORWARD -j DOCKER-USER                                 (inserted first)
//	-A FORWARD -j DOCKER-FORWARD                              (right after it)
//	-t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
//	-t nat -A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER   (no 127.0.0.0/8 exclusion)
//	-t nat -A POSTROUTING -j DOCKER-POSTROUTING
//
// The IPv6 jump from nat OUTPUT is "! -d ::1/128 -m addrtype --dst-type
// LOCAL -j DOCKER" (see IPv6 above). Each is added only when missing, and the
// ones the engine added are recorded in Options.StateDir, per family, before
// they are, so that after a crash the engine
// removes exactly its own and never a rule someone else made that happens to
// look the same. Existing jumps are not moved: a rule an administrator put
// above them stays above them.
//
// The sysctls (ip_forward, route_localnet, bridge-nf-call-iptables) and the
// FORWARD policy are the caller's business. Rule text is written exactly as
// iptables-save prints it, so the current rules are compared with the
// desired ones as strings.
//
// # The nftables layout
//
// The engine's rules live in tables of its own, "table ip docker-bridges"
// and "table ip6 docker-bridges", the names Docker 29 gives its bridge
// tables, so that tools and documentation written for Docker's nftables
// backend find them. Their base chains are Docker 29's, with its hooks and
// priorities; the regular chains hold the same rules as the iptables chains
// named after each, in the same order (in the ip6 table "ip6 saddr",
// "ip6 daddr", and the differences of IPv6 above):
//
//	chain filter-FORWARD             type filter hook forward priority filter (0); DOCKER-FORWARD's rules
//	chain filter-isolation-1         DOCKER-ISOLATION-STAGE-1
//	chain filter-isolation-2         DOCKER-ISOLATION-STAGE-2
//	chain filter-published           filter/DOCKER: ip daddr <ctrIP> iifname != <br> oifname <br> tcp dport <ctrPort> accept
//	chain nat-PREROUTING             type nat hook prerouting priority dstnat (-100):
//	  fib daddr type local jump nat-prerouting-and-output
//	chain nat-OUTPUT                 type nat hook output priority -100: the same jump (no 127.0.0.0/8 exclusion; ip6: ip6 daddr != ::1 first)
//	chain nat-prerouting-and-output  nat/DOCKER: [ip daddr <hostIP>] tcp dport <hostPort> dnat to <ctrIP>:<ctrPort>
//	chain nat-POSTROUTING            type nat hook postrouting priority srcnat (100); DOCKER-POSTROUTING's rules:
//	  oifname <br> fib saddr type local masquerade
//	  ip saddr <subnet> oifname != <br> masquerade
//	  ip saddr <ctrIP> ip daddr <ctrIP> tcp dport <ctrPort> masquerade
//
// Docker 29 spreads the same work over per-bridge chains reached through
// verdict maps; one chain per purpose keeps the rules, their order and so
// their meaning those of the iptables backend, and a device has few bridges.
// Priorities are written as numbers, which every nft version reads.
//
// Apply writes the whole tables in one nft -f run, which the kernel commits
// as one transaction:
//
//	table ip docker-bridges {}          (made if missing)
//	flush table ip docker-bridges       (every chain emptied, base chains stay hooked)
//	table ip docker-bridges { chain … }  (every chain declared again with its rules)
//	table ip6 docker-bridges {}         (the same for ip6 when a network has IPv6;
//	…                                    otherwise "delete table ip6 docker-bridges")
//
// Packets see the old rules or the new ones, never a mix nor none. The tables
// are the engine's whole: a rule someone adds to them goes at the next change
// (a chain someone adds stays, emptied). Nothing outside them is read or
// touched, so no record of ownership is kept. An unchanged state runs
// nothing; a new NFTables (a restarted daemon) writes the tables once rather
// than reading and comparing them: reading costs the same one run of nft,
// and nft's listing varies between versions. Clear deletes the tables
// (absent ones are fine). A future layout that changes a base chain's type,
// hook or priority must delete the table first, since flushing keeps base
// chains.
//
// DOCKER-USER has no counterpart: in nftables every table's base chains see
// every packet, and a drop anywhere is final while an accept only ends its
// own chain. Rules that must win over the engine's go in a table of the
// user's own, in a forward chain at a lower priority (such as filter - 1) to
// run first; a drop there cannot be undone by the engine's accepts.
//
// For the same reason the filter tables of iptables (legacy or nf_tables) on
// the same host still apply: a FORWARD policy of DROP there drops what the
// engine's table accepted (Docker 29's documentation warns the same). The
// engine does not manage other tables; whoever set that policy must accept
// the bridges' traffic, or leave the policy at ACCEPT. Switching backends
// without a reboot leaves the other backend's rules in place.
package firewall

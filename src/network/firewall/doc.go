// Package firewall keeps the engine's IPv4 iptables rules equal to a desired
// state: masquerading for bridge networks, isolation between them, and
// published ports done entirely in the kernel with DNAT, so no userland proxy
// process runs per port (dockerd's --userland-proxy=false). On a small device
// a proxy per published port costs memory and a copy of every byte.
//
// The rules are driven through iptables-restore and iptables-save, which the
// legacy and the nf_tables variants of iptables both provide with the same
// language; balenaOS ships iptables-legacy, desktops mostly the nft one.
// Docker's chain names are kept so that tools written for Docker keep
// working, above all anything that hooks into DOCKER-USER (balena's device
// agent puts its own chain under it).
//
// # Layout
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
// Each is added only when missing, and the ones the engine added are recorded
// in Options.StateDir before they are, so that after a crash the engine
// removes exactly its own and never a rule someone else made that happens to
// look the same. Existing jumps are not moved: a rule an administrator put
// above them stays above them.
//
// The sysctls (ip_forward, route_localnet, bridge-nf-call-iptables) and the
// FORWARD policy are the caller's business. Rule text is written exactly as
// iptables-save prints it, so the current rules are compared with the
// desired ones as strings.
package firewall

// Package network owns the host side of container networking: one Linux bridge per stack
// network, a veth pair per container attachment (the peer created inside the container's
// network namespace as eth0, eth1, ...), IPv4 address management recorded on disk, the contents
// of each container's /etc/hosts and /etc/resolv.conf, and the one nftables table that stack
// owns (published ports, masquerade, isolation between networks).
//
// It knows nothing about images, services or the container runtime: a container is an id and
// the path of its network namespace (/proc/PID/ns/net or a bind-mounted netns file).
// network/enginenet maps the engine's project view onto it.
//
// Privileged work is split into a pure half that decides (ipam.go: subnet and address choice;
// names.go: hosts and resolv.conf contents; ports.go: the complete nftables table as data) and a
// thin half that does it (*_linux.go). Records live under the state directory given to New and
// every change to them is made under one lock file, so concurrent stack commands serialize.
//
// What stack changes on the host, and when:
//   - bridges "stk" + hash and veths "ve" + hash, created and deleted with their records;
//   - table ip "stack": rebuilt from the records after every change and applied in one
//     transaction; it exists while any stack network or published port does (masquerade and
//     isolation are needed as soon as a network exists), and is deleted with the last one;
//   - net.ipv4.conf.<bridge>.route_localnet=1 on stack's bridges only, so 127.0.0.1 can be
//     published without a proxy process (see ensureBridge);
//   - net.ipv4.ip_forward=1 while a network that routes or a published port exists; the previous
//     value is recorded and restored with the last one (see applyFirewall);
//   - one socket per published host port, held by whoever keeps Published.Files open.
//
// The integration tests run all of this inside a namespace that plays the host
// (WithNetNS), so they never touch the real host's interfaces, routes or ruleset.
package network

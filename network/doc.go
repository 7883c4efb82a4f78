// Package network owns the host side of container networking: one Linux bridge per stack
// network, a veth pair per container attachment (the peer created inside the container's
// network namespace as eth0, eth1, ...), IPv4 address management recorded on disk, the contents
// of each container's /etc/hosts and /etc/resolv.conf, and the one nftables table that stack
// owns (published ports, masquerade, isolation between networks).
//
// It knows nothing about images, services or the container runtime: a container is an id and
// the path of its network namespace (/proc/PID/ns/net or a bind-mounted netns file).
//
// Privileged work is split into a pure half that decides (ipam.go: subnet and address choice;
// names.go: hosts and resolv.conf contents; ports.go: the complete nftables table as data) and a
// thin half that does it (*_linux.go). Records live under the state directory given to New and
// every change to them is made under one lock file, so concurrent stack commands serialize.
package network

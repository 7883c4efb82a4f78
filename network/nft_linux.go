package network

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/stackrun/stack/state"
)

// applyFirewall replaces stack's table with t in one netlink batch (add table, delete table,
// add table, chains, rules: the kernel applies the batch atomically, so no packet sees a half
// built table), or deletes the table when t is nil. Only table ip "stack" is touched.
//
// It also owns net.ipv4.ip_forward of the host namespace. Forwarding is needed for outbound
// traffic of containers and for published ports reached from other namespaces. Docker turns it
// on at daemon start and never turns it off; stack turns it on when the first table that needs
// it is applied, records the previous value under the state directory, and puts that value back
// when the table is deleted (no network and no published port left).
func (l *linuxHost) applyFirewall(t *Table) error {
	var opts []nftables.ConnOption
	if l.netns != "" {
		ns, err := netns.GetFromPath(l.netns)
		if err != nil {
			return fmt.Errorf("open netns %s: %w", l.netns, err)
		}
		defer ns.Close()
		opts = append(opts, nftables.WithNetNSFd(int(ns)))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("open nftables connection: %w", err)
	}
	defer c.CloseLasting()
	tbl := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: l.table}
	c.AddTable(tbl)
	c.DelTable(tbl)
	if t != nil {
		c.AddTable(tbl)
		for _, ch := range t.Chains {
			nch := &nftables.Chain{Name: ch.Name, Table: tbl}
			if ch.Hook != "" {
				hook, err := chainHook(ch.Hook)
				if err != nil {
					return err
				}
				policy := nftables.ChainPolicyAccept
				nch.Hooknum = hook
				nch.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(ch.Priority))
				nch.Type = nftables.ChainType(ch.Type)
				nch.Policy = &policy
			}
			c.AddChain(nch)
			for _, r := range ch.Rules {
				exprs, err := ruleExprs(r)
				if err != nil {
					return fmt.Errorf("chain %s: rule %q: %w", ch.Name, r.Render(), err)
				}
				c.AddRule(&nftables.Rule{Table: tbl, Chain: nch, Exprs: exprs})
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables transaction: %w", err)
	}
	return l.forwarding(t != nil && t.Forwarding, t == nil)
}

// forwarding turns ip_forward on when need is set, and restores the recorded previous value
// when release is set.
func (l *linuxHost) forwarding(need, release bool) error {
	prevPath := filepath.Join(l.stateDir, "ip_forward.prev")
	return doInNetNS(l.netns, func() error {
		cur, err := readSysctl("net.ipv4.ip_forward")
		if err != nil {
			return fmt.Errorf("read net.ipv4.ip_forward: %w", err)
		}
		switch {
		case need && cur != "1":
			if err := state.WriteFile(prevPath, []byte(cur), state.FileMode); err != nil {
				return fmt.Errorf("record previous net.ipv4.ip_forward: %w", err)
			}
			if err := writeSysctl("net.ipv4.ip_forward", "1"); err != nil {
				return fmt.Errorf("enable net.ipv4.ip_forward: %w", err)
			}
			l.log.Info("enabled net.ipv4.ip_forward for container networking", "previous", cur)
		case release:
			prev, err := os.ReadFile(prevPath)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read previous net.ipv4.ip_forward: %w", err)
			}
			if err := writeSysctl("net.ipv4.ip_forward", string(prev)); err != nil {
				return fmt.Errorf("restore net.ipv4.ip_forward: %w", err)
			}
			l.log.Info("restored net.ipv4.ip_forward", "value", string(prev))
			if err := os.Remove(prevPath); err != nil {
				return fmt.Errorf("remove %s: %w", prevPath, err)
			}
		}
		return nil
	})
}

func chainHook(name string) (*nftables.ChainHook, error) {
	switch name {
	case "prerouting":
		return nftables.ChainHookPrerouting, nil
	case "output":
		return nftables.ChainHookOutput, nil
	case "postrouting":
		return nftables.ChainHookPostrouting, nil
	case "forward":
		return nftables.ChainHookForward, nil
	case "input":
		return nftables.ChainHookInput, nil
	}
	return nil, fmt.Errorf("chain hook %q: %w", name, ErrInvalid)
}

// ipsDstNAT is IPS_DST_NAT of enum ip_conntrack_status (linux/netfilter/nf_conntrack_common.h):
// what `ct status dnat` tests.
const ipsDstNAT = 1 << 5

func ifname(s string) []byte {
	b := make([]byte, 16)
	copy(b, s)
	return b
}

// ruleExprs compiles a Rule into nftables expressions, matches first, in the order Render
// prints them, then a counter and the verdict.
func ruleExprs(r Rule) ([]expr.Any, error) {
	var e []expr.Any
	meta := func(key expr.MetaKey, op expr.CmpOp, data []byte) {
		e = append(e, &expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: data})
	}
	if r.IIF != "" {
		meta(expr.MetaKeyIIFNAME, expr.CmpOpEq, ifname(r.IIF))
	}
	if r.NotIIF != "" {
		meta(expr.MetaKeyIIFNAME, expr.CmpOpNeq, ifname(r.NotIIF))
	}
	if r.OIF != "" {
		meta(expr.MetaKeyOIFNAME, expr.CmpOpEq, ifname(r.OIF))
	}
	if r.NotOIF != "" {
		meta(expr.MetaKeyOIFNAME, expr.CmpOpNeq, ifname(r.NotOIF))
	}
	addr := func(offset uint32, p interface {
		Bits() int
	}, network []byte) {
		e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4})
		if bits := p.Bits(); bits < 32 {
			mask := make([]byte, 4)
			binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-bits))
			e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)})
		}
		e = append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: network})
	}
	if r.Saddr.IsValid() {
		a := r.Saddr.Masked().Addr().As4()
		addr(12, r.Saddr, a[:])
	}
	if r.Daddr.IsValid() {
		a := r.Daddr.Masked().Addr().As4()
		addr(16, r.Daddr, a[:])
	}
	if r.DaddrLocal {
		e = append(e,
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)})
	}
	if r.CtDNAT {
		e = append(e,
			&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
	}
	if r.Proto != "" {
		var proto byte
		switch r.Proto {
		case "tcp":
			proto = unix.IPPROTO_TCP
		case "udp":
			proto = unix.IPPROTO_UDP
		default:
			return nil, fmt.Errorf("protocol %q: %w", r.Proto, ErrInvalid)
		}
		meta(expr.MetaKeyL4PROTO, expr.CmpOpEq, []byte{proto})
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(r.Dport)})
	}
	e = append(e, &expr.Counter{})
	switch r.Verdict {
	case "accept":
		e = append(e, &expr.Verdict{Kind: expr.VerdictAccept})
	case "drop":
		e = append(e, &expr.Verdict{Kind: expr.VerdictDrop})
	case "jump":
		e = append(e, &expr.Verdict{Kind: expr.VerdictJump, Chain: r.Jump})
	case "masquerade":
		e = append(e, &expr.Masq{})
	case "dnat":
		a := r.ToAddr.As4()
		e = append(e,
			&expr.Immediate{Register: 1, Data: a[:]},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(r.ToPort)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true})
	default:
		return nil, fmt.Errorf("verdict %q: %w", r.Verdict, ErrInvalid)
	}
	return e, nil
}

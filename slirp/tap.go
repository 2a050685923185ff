package slirp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sbx-sandbox/sbx/spec"
)

// tapName is the sandbox's network interface under user-mode networking.
const tapName = "tap0"

// CreateTap is the child side of the user-mode network: it makes the
// sandbox's TAP device inside the sandbox's network namespace, which needs
// CAP_NET_ADMIN there, and returns its fd for the parent's Stack.Attach. It
// must run while the host's /dev/net/tun is still in view.
func CreateTap(n spec.Net) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w (user-mode networking needs the tun module)", err)
	}
	tap := os.NewFile(uintptr(fd), "/dev/net/tun")
	ifr, err := unix.NewIfreq(tapName)
	if err != nil {
		tap.Close()
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		tap.Close()
		return nil, fmt.Errorf("create %s: %w", tapName, err)
	}
	if err := configureTap(n); err != nil {
		tap.Close()
		return nil, fmt.Errorf("configure %s: %w", tapName, err)
	}
	allowPing()
	return tap, nil
}

// allowPing lets the sandbox's groups open ping sockets in its network
// namespace; whether an echo leaves is then the stack's decision and the
// host's ping_group_range for the parent. Best effort: without it, ping
// inside simply fails as it would have.
func allowPing() {
	data, err := os.ReadFile("/proc/self/gid_map")
	if err != nil {
		return
	}
	var ranges [][2]uint64
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var inside, outside, count uint64
		if _, err := fmt.Sscan(line, &inside, &outside, &count); err == nil && count > 0 {
			ranges = append(ranges, [2]uint64{inside, inside + count - 1})
		}
	}
	if len(ranges) == 0 {
		return
	}
	lo, hi := ranges[0][0], ranges[0][1]
	for _, r := range ranges {
		lo, hi = min(lo, r[0]), max(hi, r[1])
	}
	// The kernel wants both ends mapped and in order on the host too;
	// failing that, one extent of the map will do.
	for _, r := range append([][2]uint64{{lo, hi}}, ranges...) {
		if os.WriteFile("/proc/sys/net/ipv4/ping_group_range", fmt.Appendf(nil, "%d %d", r[0], r[1]), 0) == nil {
			return
		}
	}
}

// configureTap gives the interface its MTU, addresses and default routes,
// and brings it up.
func configureTap(n spec.Net) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	ifr, _ := unix.NewIfreq(tapName)
	if err := unix.IoctlIfreq(s, unix.SIOCGIFINDEX, ifr); err != nil {
		return fmt.Errorf("interface index: %w", err)
	}
	index := ifr.Uint32()
	ifr, _ = unix.NewIfreq(tapName)
	ifr.SetUint32(MTU)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFMTU, ifr); err != nil {
		return fmt.Errorf("mtu: %w", err)
	}
	ifr, _ = unix.NewIfreq(tapName)
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	nl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer unix.Close(nl)
	if err := unix.Bind(nl, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	if err := addAddress(nl, index, netip.PrefixFrom(SandboxAddr, Prefix4.Bits())); err != nil {
		return err
	}
	if err := addDefaultRoute(nl, index, GatewayAddr); err != nil {
		return err
	}
	if n.IPv6 {
		if err := addAddress(nl, index, netip.PrefixFrom(SandboxAddr6, Prefix6.Bits())); err != nil {
			return err
		}
		if err := addDefaultRoute(nl, index, GatewayAddr6); err != nil {
			return err
		}
	}
	return nil
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// addAddress assigns p to the interface; IPv6 skips duplicate address
// detection, pointless on a link with one known peer, so the address is
// usable at once.
func addAddress(nl int, index uint32, p netip.Prefix) error {
	msg := []byte{family(p.Addr()), uint8(p.Bits()), 0, unix.RT_SCOPE_UNIVERSE}
	msg = binary.NativeEndian.AppendUint32(msg, index)
	msg = rtattr(msg, unix.IFA_LOCAL, p.Addr().AsSlice())
	msg = rtattr(msg, unix.IFA_ADDRESS, p.Addr().AsSlice())
	if p.Addr().Is6() {
		msg = rtattr(msg, unix.IFA_FLAGS, binary.NativeEndian.AppendUint32(nil, unix.IFA_F_NODAD))
	}
	if err := netlinkDo(nl, unix.RTM_NEWADDR, msg); err != nil {
		return fmt.Errorf("address %s: %w", p, err)
	}
	return nil
}

func addDefaultRoute(nl int, index uint32, gw netip.Addr) error {
	msg := []byte{family(gw), 0, 0, 0, unix.RT_TABLE_MAIN, unix.RTPROT_BOOT, unix.RT_SCOPE_UNIVERSE, unix.RTN_UNICAST, 0, 0, 0, 0}
	msg = rtattr(msg, unix.RTA_GATEWAY, gw.AsSlice())
	msg = rtattr(msg, unix.RTA_OIF, binary.NativeEndian.AppendUint32(nil, index))
	if err := netlinkDo(nl, unix.RTM_NEWROUTE, msg); err != nil {
		return fmt.Errorf("default route via %s: %w", gw, err)
	}
	return nil
}

func rtattr(b []byte, typ uint16, data []byte) []byte {
	l := unix.SizeofRtAttr + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// netlinkDo sends one creating request and waits for the kernel's answer.
func netlinkDo(nl int, typ uint16, body []byte) error {
	const seq = 1
	msg := binary.NativeEndian.AppendUint32(nil, uint32(unix.NLMSG_HDRLEN+len(body)))
	msg = binary.NativeEndian.AppendUint16(msg, typ)
	msg = binary.NativeEndian.AppendUint16(msg, unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	msg = binary.NativeEndian.AppendUint32(msg, seq)
	msg = binary.NativeEndian.AppendUint32(msg, 0)
	msg = append(msg, body...)
	if err := unix.Sendto(nl, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(nl, buf, 0)
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Seq != seq || m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
				return unix.Errno(-errno)
			}
			return nil
		}
	}
}

package setup

import (
	"net/netip"
	"net/url"
	"strings"
)

// sharedAddressSpace is RFC 6598's carrier-grade NAT range, which VPNs such
// as Tailscale hand out too: no more reachable from the internet than RFC 1918.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// unreachable says why GitHub.com cannot deliver webhooks to the server at
// public, or returns "" when its address does not show that. It looks at the
// address alone and resolves nothing: a public name may still be firewalled,
// and a GitHub Enterprise Server may reach a private one.
func unreachable(public string) string {
	u, err := url.Parse(public)
	if err != nil {
		return ""
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		switch {
		case ip.IsLoopback():
			return "a loopback address"
		case ip.IsUnspecified():
			return "the unspecified address"
		case ip.IsPrivate():
			return "a private network address"
		case ip.IsLinkLocalUnicast():
			return "a link-local address"
		case sharedAddressSpace.Contains(ip):
			return "a carrier-grade NAT or VPN address"
		}
		return ""
	}
	switch {
	case host == "localhost" || strings.HasSuffix(host, ".localhost"):
		return "a loopback address"
	case strings.HasSuffix(host, ".local"):
		return "a .local name, which only your network resolves"
	case !strings.Contains(host, "."):
		return "a name without a domain, which only your network resolves"
	}
	return ""
}

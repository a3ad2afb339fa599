package reqlog

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Headers that carry the client address through proxies; see
// Options.ProxyHeader.
const (
	HeaderXForwardedFor = "X-Forwarded-For"
	HeaderForwarded     = "Forwarded" // RFC 7239
)

// ClientIP returns the client IP address of r as the request log records it.
//
// By default (no TrustedProxies) it is the address of the direct peer,
// r.RemoteAddr, and no header is read: whatever a client writes in a header
// is ignored.
//
// When the peer is in TrustedProxies, the header named by ProxyHeader
// (X-Forwarded-For unless set to Forwarded) is read right to left, across
// all its header lines in order, skipping the hops that are themselves in
// TrustedProxies; the first untrusted hop is the client. Everything to the
// left of it was written by the client or by proxies we do not trust, and is
// never used. Only the configured header is read: a client that sends the
// other one cannot smuggle an address past proxies that do not strip it.
//
// What fails safe:
//   - More than 32 hops, all trusted, or a Forwarded header line over 8 KiB
//     give the peer's address.
//   - An entry that is not an IP address (garbage, "unknown", an RFC 7239
//     obfuscated identifier, a malformed Forwarded element) reached before an
//     untrusted hop makes the result the peer's address: never an address
//     the client chose.
//   - A missing or empty header gives the peer's address.
//   - If every hop is trusted, the left-most hop is the client (a request
//     that started inside the trusted network).
//
// Header addresses are normalized before the trust check and the result:
// IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4 and IPv6 zones are dropped,
// so neither notation can alias a trusted address. An optional port
// ("192.0.2.1:443", "[2001:db8::1]:443") is accepted and removed. The peer's
// address is unmapped the same way; if RemoteAddr is not an IP address (a
// Unix socket, a test) its host part is returned as it is.
func (o Options) ClientIP(r *http.Request) string {
	ip, raw := o.clientAddr(r)
	if !ip.IsValid() {
		return raw
	}
	return ip.String()
}

// ClientIPAddr is ClientIP as a netip.Addr; it is the zero Addr when the
// peer address is not an IP address.
func (o Options) ClientIPAddr(r *http.Request) netip.Addr {
	ip, _ := o.clientAddr(r)
	return ip
}

// clientAddr resolves the client address; raw is the peer's host when it
// does not parse as an address.
func (o Options) clientAddr(r *http.Request) (ip netip.Addr, raw string) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, host
	}
	peer = peer.Unmap()
	if len(o.TrustedProxies) == 0 || !o.trusted(peer.WithZone("")) {
		return peer, ""
	}
	var values []string
	forwarded := strings.EqualFold(o.ProxyHeader, HeaderForwarded)
	switch {
	case forwarded:
		values = r.Header.Values(HeaderForwarded)
	case o.ProxyHeader == "" || strings.EqualFold(o.ProxyHeader, HeaderXForwardedFor):
		values = r.Header.Values(HeaderXForwardedFor)
	default:
		// An unknown header name is refused by Middleware; here it fails
		// safe by honouring no header at all.
		return peer, ""
	}
	var left netip.Addr // left-most hop seen so far, all trusted
	n := 0
	// visit examines one hop, right to left; done reports the answer.
	visit := func(h hop) (ip netip.Addr, done bool) {
		if n++; n > maxHops || !h.ok {
			return peer, true
		}
		if !o.trusted(h.ip) {
			return h.ip, true
		}
		left = h.ip
		return netip.Addr{}, false
	}
	for i := len(values) - 1; i >= 0; i-- {
		if forwarded {
			hops := parseForwarded(values[i])
			for j := len(hops) - 1; j >= 0; j-- {
				if ip, done := visit(hops[j]); done {
					return ip, ""
				}
			}
			continue
		}
		// X-Forwarded-For: walk the entries from the right without
		// splitting the whole header.
		for v := values[i]; v != ""; {
			var e string
			if k := strings.LastIndexByte(v, ','); k >= 0 {
				e, v = v[k+1:], v[:k]
			} else {
				e, v = v, ""
			}
			if e = strings.TrimSpace(e); e == "" {
				continue
			}
			ip, ok := parseHop(e)
			if ip, done := visit(hop{ip, ok}); done {
				return ip, ""
			}
		}
	}
	if left.IsValid() {
		return left, ""
	}
	return peer, ""
}

// maxHops bounds the hops ClientIP examines: a longer chain of trusted hops
// gives the peer's address, so a huge header costs little.
const maxHops = 32

// maxForwardedLine bounds the Forwarded header line that is parsed (32 hops
// take about 2 KiB); a longer one is treated as malformed.
const maxForwardedLine = 8 << 10

// trusted reports whether the normalized address ip is in TrustedProxies. A
// prefix written in IPv4-mapped form (::ffff:10.0.0.0/104) matches the IPv4
// addresses it maps.
func (o Options) trusted(ip netip.Addr) bool {
	for _, p := range o.TrustedProxies {
		if p.Contains(ip) || ip.Is4() && p.Addr().Is4In6() && p.Contains(netip.AddrFrom16(ip.As16())) {
			return true
		}
	}
	return false
}

// hop is one entry of a forwarding header: an address, or !ok for an entry
// that is not one.
type hop struct {
	ip netip.Addr
	ok bool
}

// parseHop parses an address with an optional port or IPv6 brackets, and
// normalizes it (unmapped, no zone).
func parseHop(s string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		switch {
		case strings.HasPrefix(s, "["):
			end := strings.IndexByte(s, ']')
			if end < 0 || !validPort(s[end+1:]) {
				return netip.Addr{}, false
			}
			ip, err = netip.ParseAddr(s[1:end])
			if err != nil || !ip.Is6() {
				return netip.Addr{}, false
			}
		case strings.Count(s, ":") == 1:
			i := strings.IndexByte(s, ':')
			if !validPort(s[i:]) {
				return netip.Addr{}, false
			}
			ip, err = netip.ParseAddr(s[:i])
			if err != nil || !ip.Is4() {
				return netip.Addr{}, false
			}
		default:
			return netip.Addr{}, false
		}
	}
	return ip.Unmap().WithZone(""), true
}

// validPort reports whether s is empty or ":" followed by 1 to 5 digits.
func validPort(s string) bool {
	if s == "" {
		return true
	}
	if s[0] != ':' || len(s) < 2 || len(s) > 6 {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseForwarded splits one RFC 7239 Forwarded header line into hops, left
// to right: one per forwarded-element, from its "for" parameter. An element
// without exactly one "for", or whose "for" is not an address ("unknown",
// "_obfuscated"), is a !ok hop. If the line does not parse (bad token,
// unterminated quoted-string, ...), the whole line becomes one !ok hop:
// since a quote opened by the client could have swallowed what a proxy
// appended, nothing in a malformed line is believed.
func parseForwarded(v string) []hop {
	if len(v) > maxForwardedLine {
		return []hop{{}}
	}
	var hops []hop
	p := forwardedParser{s: v}
	for {
		p.skipSpace()
		if p.i == len(p.s) {
			return hops
		}
		if p.s[p.i] == ',' { // empty element, as in "a, , b"
			p.i++
			continue
		}
		h, ok := p.element()
		if !ok {
			return []hop{{}}
		}
		hops = append(hops, h)
		p.skipSpace()
		if p.i < len(p.s) {
			if p.s[p.i] != ',' {
				return []hop{{}}
			}
			p.i++
		}
	}
}

type forwardedParser struct {
	s string
	i int
}

func (p *forwardedParser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// element parses pairs separated by ';' up to the next ',' or the end.
func (p *forwardedParser) element() (hop, bool) {
	var h hop
	fors := 0
	for {
		p.skipSpace()
		name := p.token()
		if name == "" || p.i >= len(p.s) || p.s[p.i] != '=' {
			return hop{}, false
		}
		p.i++
		var value string
		if p.i < len(p.s) && p.s[p.i] == '"' {
			var ok bool
			if value, ok = p.quoted(); !ok {
				return hop{}, false
			}
		} else if value = p.token(); value == "" {
			return hop{}, false
		}
		if strings.EqualFold(name, "for") {
			fors++
			h.ip, h.ok = parseHop(value)
		}
		p.skipSpace()
		if p.i < len(p.s) && p.s[p.i] == ';' {
			p.i++
			continue
		}
		if p.i < len(p.s) && p.s[p.i] != ',' {
			return hop{}, false
		}
		if fors != 1 {
			h = hop{}
		}
		return h, true
	}
}

// token reads an RFC 7230 token.
func (p *forwardedParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// quoted reads a quoted-string at p.i, unescaping quoted-pairs.
func (p *forwardedParser) quoted() (string, bool) {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), true
		case c == '\\':
			if p.i+1 >= len(p.s) {
				return "", false
			}
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		case c < 0x20 && c != '\t' || c == 0x7f:
			return "", false
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", false
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

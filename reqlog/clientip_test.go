package reqlog

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func TestClientIP(t *testing.T) {
	proxies := prefixes("10.0.0.0/8", "2001:db8:ffff::/48")
	tests := []struct {
		name    string
		trusted []netip.Prefix
		header  string // ProxyHeader option
		remote  string
		xff     []string
		fwd     []string
		want    string
	}{
		// No proxy trusted: headers are ignored.
		{name: "default ignores XFF", remote: "198.51.100.7:5555", xff: []string{"1.2.3.4"}, want: "198.51.100.7"},
		{name: "default ignores Forwarded", remote: "198.51.100.7:5555", fwd: []string{"for=1.2.3.4"}, header: HeaderForwarded, want: "198.51.100.7"},
		{name: "ipv6 peer", remote: "[2001:db8::5]:443", want: "2001:db8::5"},
		{name: "mapped peer", remote: "[::ffff:198.51.100.7]:80", want: "198.51.100.7"},
		{name: "peer not ip", remote: "@", want: "@"},
		{name: "peer without port", remote: "198.51.100.7", want: "198.51.100.7"},

		// Peer untrusted: a client cannot spoof.
		{name: "untrusted peer XFF spoof", trusted: proxies, remote: "198.51.100.7:1", xff: []string{"10.0.0.1, 1.2.3.4"}, want: "198.51.100.7"},

		// One trusted proxy.
		{name: "one hop", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "client prepends spoof", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"6.6.6.6, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "client spoofs trusted addr", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"10.9.9.9, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "chain of trusted", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"6.6.6.6, 203.0.113.9, 10.1.1.1, 10.2.2.2"}, want: "203.0.113.9"},
		{name: "multiple header lines", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"6.6.6.6", "203.0.113.9, 10.1.1.1"}, want: "203.0.113.9"},
		{name: "spoof in second of two lines", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"203.0.113.9", "6.6.6.6"}, want: "6.6.6.6"},
		{name: "all hops trusted", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"10.3.3.3, 10.1.1.1"}, want: "10.3.3.3"},
		{name: "no header behind proxy", trusted: proxies, remote: "10.0.0.2:1", want: "10.0.0.2"},
		{name: "empty header", trusted: proxies, remote: "10.0.0.2:1", xff: []string{" , ,"}, want: "10.0.0.2"},
		{name: "garbage right-most", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"203.0.113.9, nonsense"}, want: "10.0.0.2"},
		{name: "garbage left of client ignored", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"nonsense, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "garbage behind trusted hop", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"\x00\xff<script>, 10.1.1.1"}, want: "10.0.0.2"},
		{name: "xff with port", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"203.0.113.9:4711"}, want: "203.0.113.9"},
		{name: "xff ipv6 brackets port", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"[2001:db8::9]:4711"}, want: "2001:db8::9"},
		{name: "xff bad port", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"203.0.113.9:http"}, want: "10.0.0.2"},
		{name: "mapped alias of trusted is trusted", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"203.0.113.9, ::ffff:10.1.1.1"}, want: "203.0.113.9"},
		{name: "zone alias of trusted is trusted", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"203.0.113.9, 2001:db8:ffff::1%eth0"}, want: "203.0.113.9"},
		{name: "mapped client unmapped", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"::ffff:203.0.113.9"}, want: "203.0.113.9"},
		{name: "mapped peer trusted", trusted: proxies, remote: "[::ffff:10.0.0.2]:1", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "mapped prefix", trusted: prefixes("::ffff:10.0.0.0/104"), remote: "10.0.0.2:1", xff: []string{"203.0.113.9, 10.1.1.1"}, want: "203.0.113.9"},
		{name: "ipv6 proxy", trusted: proxies, remote: "[2001:db8:ffff::2]:1", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "XFF ignored when Forwarded configured", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", xff: []string{"6.6.6.6"}, want: "10.0.0.2"},
		{name: "Forwarded ignored when XFF configured", trusted: proxies, remote: "10.0.0.2:1", fwd: []string{"for=6.6.6.6"}, xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "unsupported header honours nothing", trusted: proxies, header: "X-Real-IP", remote: "10.0.0.2:1", xff: []string{"6.6.6.6"}, want: "10.0.0.2"},
		{name: "over 32 trusted hops", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"203.0.113.9, " + longXFF(32)}, want: "10.0.0.2"},
		{name: "32 trusted hops", trusted: proxies, remote: "10.0.0.2:1", xff: []string{"203.0.113.9, " + longXFF(31)}, want: "203.0.113.9"},
		{name: "fwd over 32 trusted hops", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{"for=203.0.113.9, " + strings.ReplaceAll("for="+longXFF(32), ", ", ", for=")}, want: "10.0.0.2"},
		{name: "fwd line too long", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{"for=6.6.6.6;x=" + strings.Repeat("a", 9000) + ", for=203.0.113.9"}, want: "10.0.0.2"},
		{name: "huge chain", trusted: proxies, remote: "10.0.0.2:1", xff: []string{longXFF(2000) + ", 203.0.113.9"}, want: "203.0.113.9"},

		// RFC 7239 Forwarded.
		{name: "fwd simple", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{"for=203.0.113.9;proto=https;by=10.0.0.2"}, want: "203.0.113.9"},
		{name: "fwd case-insensitive", trusted: proxies, header: "forwarded", remote: "10.0.0.2:1", fwd: []string{"For=203.0.113.9"}, want: "203.0.113.9"},
		{name: "fwd chain", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{`for=6.6.6.6, for=203.0.113.9;proto=http, for="10.1.1.1:80"`}, want: "203.0.113.9"},
		{name: "fwd quoted ipv6 port", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{`for="[2001:db8:cafe::17]:4711"`}, want: "2001:db8:cafe::17"},
		{name: "fwd two lines", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{"for=6.6.6.6", "for=203.0.113.9"}, want: "203.0.113.9"},
		{name: "fwd unknown", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{"for=6.6.6.6, for=unknown"}, want: "10.0.0.2"},
		{name: "fwd obfuscated", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{"for=_hidden"}, want: "10.0.0.2"},
		{name: "fwd no for", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{"proto=https"}, want: "10.0.0.2"},
		{name: "fwd two fors", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{"for=6.6.6.6;for=203.0.113.9"}, want: "10.0.0.2"},
		{name: "fwd unquoted ipv6", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{"for=[2001:db8::1]"}, want: "10.0.0.2"},
		{name: "fwd comma inside quotes", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{`for="6.6.6.6, 7.7.7.7"`}, want: "10.0.0.2"},
		{name: "fwd unterminated quote swallows proxy", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{`for="6.6.6.6, for=203.0.113.9`}, want: "10.0.0.2"},
		{name: "fwd malformed client line, proxy line", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{`for="6.6.6.6`, "for=203.0.113.9"}, want: "203.0.113.9"},
		{name: "fwd escaped quote", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{`for="203.0.113.9\"", for=10.1.1.1`}, want: "10.0.0.2"},
		{name: "fwd quoted-pair", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{`for="203.0.\113.9"`}, want: "203.0.113.9"},
		{name: "fwd empty elements", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{" , for=203.0.113.9 ,, "}, want: "203.0.113.9"},
		{name: "fwd junk after value", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{"for=203.0.113.9 x"}, want: "10.0.0.2"},
		{name: "fwd control byte", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{"for=\"203.0.113.9\x01\""}, want: "10.0.0.2"},
		{name: "fwd trailing backslash", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{`for="203.0.113.9\`}, want: "10.0.0.2"},
		{name: "fwd missing value", trusted: proxies, header: HeaderForwarded, remote: "10.0.0.2:1", fwd: []string{"for="}, want: "10.0.0.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range tt.fwd {
				r.Header.Add("Forwarded", v)
			}
			o := Options{TrustedProxies: tt.trusted, ProxyHeader: tt.header}
			if got := o.ClientIP(r); got != tt.want {
				t.Fatalf("ClientIP = %q, want %q", got, tt.want)
			}
			if a := o.ClientIPAddr(r); a.IsValid() && a.String() != tt.want {
				t.Fatalf("ClientIPAddr = %v, want %q", a, tt.want)
			}
		})
	}
}

func longXFF(n int) string {
	b := make([]byte, 0, n*10)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, "10.0.0.9"...)
	}
	return string(b)
}

// FuzzClientIP checks that hostile forwarding headers never panic and that
// the result is always a valid, normalized address.
func FuzzClientIP(f *testing.F) {
	f.Add("203.0.113.9, 10.1.1.1", `for="[2001:db8::1]:80";proto=https, for=10.1.1.1`)
	f.Add(`"`, `for="\`)
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		for _, h := range []string{HeaderXForwardedFor, HeaderForwarded} {
			r := &http.Request{RemoteAddr: "10.0.0.2:1", Header: http.Header{}}
			r.Header.Set("X-Forwarded-For", xff)
			r.Header.Set("Forwarded", fwd)
			o := Options{TrustedProxies: prefixes("10.0.0.0/8"), ProxyHeader: h}
			a := o.ClientIPAddr(r)
			if !a.IsValid() {
				t.Fatalf("invalid address for xff=%q fwd=%q", xff, fwd)
			}
			if a.Zone() != "" || a.Is4In6() {
				t.Fatalf("not normalized: %v", a)
			}
		}
	})
}

func BenchmarkClientIP(b *testing.B) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.2:1234"
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.9, 10.1.1.1")
	for name, o := range map[string]Options{
		"direct": {},
		"xff":    {TrustedProxies: prefixes("10.0.0.0/8")},
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				o.ClientIP(r)
			}
		})
	}
}

// addrStringCases are peer addresses whose host part may or may not be the
// canonical spelling of the address the log line carries.
var addrStringCases = []string{
	"203.0.113.9:443", "127.0.0.1:1", "0.0.0.0:0", "[::ffff:10.0.0.1]:80",
	"[2001:db8::1]:80", "[2001:DB8:0:0::1]:80", "[fe80::1%eth0]:1", "1.2.3.4",
	"01.2.3.4:1", "1.2.3.4.5:1", "[::1]:1", "garbage",
}

// TestAddrString: the ip field is the address's canonical form whichever
// spelling the peer address used; a canonical IPv4 host is used as is.
func TestAddrString(t *testing.T) {
	for _, ra := range addrStringCases {
		checkAddrString(t, ra)
	}
	if n := testing.AllocsPerRun(100, func() { addrString(netip.MustParseAddr("203.0.113.9"), "203.0.113.9:443") }); n != 0 {
		t.Errorf("a canonical IPv4 peer costs %.0f allocations", n)
	}
}

func checkAddrString(t *testing.T, remoteAddr string) {
	t.Helper()
	r := &http.Request{RemoteAddr: remoteAddr}
	addr, _ := Options{}.clientAddr(r)
	if !addr.IsValid() {
		return
	}
	if got, want := addrString(addr, remoteAddr), addr.String(); got != want {
		t.Errorf("addrString(%v, %q) = %q, want %q", addr, remoteAddr, got, want)
	}
}

func FuzzAddrString(f *testing.F) {
	for _, ra := range addrStringCases {
		f.Add(ra)
	}
	f.Fuzz(func(t *testing.T, remoteAddr string) { checkAddrString(t, remoteAddr) })
}

package forensics

import (
	"fmt"
	"strings"
	"time"
)

// Severity ranks findings. Higher is worse.
type Severity int

// Severities, lowest first.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

// String returns the severity's name: info, low, medium, high or critical.
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity returns the Severity named s (info, low, medium, high,
// critical).
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(n, s) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("forensics: unknown severity %q (want info, low, medium, high or critical)", s)
}

// Rule ids, as they appear in findings.
const (
	RuleCookieMismatch     = "cookie-mismatch"
	RuleProcessHandoff     = "process-handoff"
	RuleSecondClient       = "second-client"
	RulePrincipalDrift     = "principal-drift"
	RuleConcurrentNetworks = "concurrent-networks"
	RuleIdentityFlip       = "identity-flip"
	RuleUseAfterEnd        = "use-after-end"
	RuleGuardEvent         = "guard-event"
	RuleCacheLeak          = "cache-leak"
	RuleDBSCCopy           = "dbsc-copy"
)

// RuleInfo describes one rule for `cordon scan -rules` and the docs.
type RuleInfo struct {
	N              int
	ID             string
	Severity       Severity
	Summary        string
	FalsePositives string
	Flags          string
}

// Rules returns the scanner's rules in order.
func Rules() []RuleInfo {
	return []RuleInfo{
		{1, RuleCookieMismatch, Critical,
			"a response set a session cookie whose owner (uid_out) differs from the principal the response was produced for (uid_view), outside login/signup; also when an anonymous response sets a principal's session",
			"login and signup flows that render the old principal while setting the new session: excluded when event=login or the path ends in one of -auth-paths; an app that renders another user's page on purpose (admin impersonation) while renewing the admin's session",
			"-auth-paths"},
		{2, RuleProcessHandoff, Critical,
			"a session set in a response had been seen (sid_in or sid_out) in a request of a different client on the same host+pid within -handoff-window requests (by seq): the 2021 signature",
			"two devices of one user behind one session when the writer sets no device cookie and their User-Agents differ (e.g. a browser updated mid-session); session sharing between a native app and its web view",
			"-handoff-window"},
		{3, RuleSecondClient, High,
			"a session first bound to one client (device fingerprint; when either side has none, the User-Agent) later arrives from, or is sent to, another client without a login there",
			"a browser whose device cookie is replaced while its session cookie is kept (cookie-clearing extensions); a User-Agent that changes mid-session (browser update) when no device cookie is set. Without device cookies, a copy with the same User-Agent is not seen here (concurrent-networks may see it)",
			"-session-ttl"},
		{4, RulePrincipalDrift, Critical,
			"one session fingerprint maps to two principals (uid_in/uid_out)",
			"an application that changes a session's principal in place (cordon never does: logging in issues a new session); account merges",
			"-session-ttl"},
		{5, RuleConcurrentNetworks, Medium,
			"one session used from two networks (IPv4 /24, IPv6 /64) within -net-window: by two different clients, or by one client without a device cookie going back and forth between networks of different ASNs, each leg longer than -clock-skew. The same going back and forth with one device cookie on both sides is low (a device flapping between Wi-Fi and cellular: counted, not listed, by default); a switch between IPv4 and IPv6 by the same client is informational (Happy Eyeballs); address changes inside one operator by the same client (carrier NAT; one ASN, or without asn in the log one IPv4 /16 or IPv6 /32) and IPv6 privacy addresses (same /64) raise nothing",
			"a client without a device cookie toggling a VPN, or flapping between Wi-Fi and cellular, within the window; in logs without asn, a carrier-NAT pool that spans several /16s makes one client's hops look like network changes when they go back and forth; host clocks further apart than -clock-skew",
			"-net-window, -clock-skew"},
		{6, RuleIdentityFlip, High,
			"the same client (device cookie) sees principal A, then B, then A (uid_view) with no login or logout between (nor within -clock-skew of the flip; lines delivered later than -skew do not count)",
			"account switchers that change the principal without a login event; shared kiosks that keep one device cookie and switch users without logging out; host clocks further apart than -clock-skew around a login",
			"-clock-skew"},
		{7, RuleUseAfterEnd, High,
			"a session authenticates (sid_in with uid_in) after a revoke, logout or expire event for it, later than -grace",
			"requests in flight during the logout that reach nodes slower than -grace to learn of it; clocks of hosts off by more than -grace",
			"-grace"},
		{8, RuleGuardEvent, Medium,
			"a guard_block or stale_use event, with the request's context (session, principals, client, the previous request on the same process)",
			"none by construction: the event was recorded by cordon itself; a guard_block means a leak was stopped, not that one happened",
			""},
		{9, RuleCacheLeak, Critical,
			"a response answered from a shared cache (cache: hit) that carried a Set-Cookie (critical) or a principal in uid_view (high), unless it was served to that very principal (uid_in equals uid_view and uid_out): a cache keyed by user is counted as benign, not a finding",
			"a cache that is private to one browser, logged as a hit for an anonymous request (then cache should not be logged as hit by a shared cache)",
			""},
		{10, RuleDBSCCopy, High,
			"a device-bound session (DBSC) presented without its valid bound cookie (dbsc_unbound), or a refresh of it whose proof failed (dbsc_proof_failed, bad_proof), by a client (device cookie; when either side has none, the User-Agent; when either has no User-Agent, the IP network) other than the one that registered it or last refreshed it: a copy of the session cookie is in use elsewhere; DBSC refused it, but the session should be revoked. The same client's unbound use (its bound cookie lapsed before a refresh) is low (counted, not listed, by default). Needs the session's dbsc_register or dbsc_refresh in the logs scanned (carried across a renew)",
			"a browser whose device cookie is replaced, or whose User-Agent changes (browser update) without a device cookie, between its last refresh and its next unbound request; a client without device cookie and User-Agent that moves to another network",
			"-session-ttl"},
	}
}

// Config holds every threshold and window of the scan. DefaultConfig gives
// the documented defaults.
type Config struct {
	// Skew is how far out of order (by ts) lines may be; later lines are
	// still scanned but counted as late.
	Skew time.Duration
	// HandoffWindow is how many requests (by seq) of one process rule 2
	// looks across.
	HandoffWindow int
	// NetWindow is rule 5's window.
	NetWindow time.Duration
	// ClockSkew is how far apart the hosts' clocks may be: rules that read
	// the order of requests served by different hosts (a client going back
	// and forth between networks, a device's pages around a login) do not
	// fire on orderings closer than this.
	ClockSkew time.Duration
	// Grace is how long after a revoke/logout/expire a session may still
	// authenticate (propagation across nodes) before rule 7 fires.
	Grace time.Duration
	// SessionTTL is how long a session's state is kept after its last use
	// (rules 3, 4, 5, 7 forget it afterwards).
	SessionTTL time.Duration
	// AuthPaths are path suffixes of login and signup endpoints (rule 1).
	AuthPaths []string
	// MinSeverity drops findings below it.
	MinSeverity Severity
	// MaxMalformed is how many malformed lines are reported by location.
	MaxMalformed int
	// MaxRequests caps the request ids kept per finding.
	MaxRequests int
	// Workers is the number of parsing goroutines. 0 means one per CPU but
	// one (at least one): the rules run on a goroutine of their own, and a
	// parser competing with them for the last CPU slows the whole scan.
	Workers int
	// ChunkSize is the size of the pieces the input is parsed in.
	ChunkSize int
	// Progress, if set, is called now and then with the input bytes read
	// so far (compressed bytes for gzip sources).
	Progress func(read int64)
	// Now is the clock used to time the scan (Stats.Seconds); nil means
	// time.Now.
	Now func() time.Time
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Skew:          5 * time.Minute,
		HandoffWindow: 16,
		NetWindow:     10 * time.Minute,
		Grace:         30 * time.Second,
		ClockSkew:     5 * time.Second,
		SessionTTL:    24 * time.Hour,
		AuthPaths:     []string{"/login", "/signup", "/register"},
		MinSeverity:   Medium,
		MaxMalformed:  10,
		MaxRequests:   50,
		ChunkSize:     1 << 20,
	}
}

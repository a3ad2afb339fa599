// Package synth writes realistic synthetic request logs (logschema.md) with
// injected incidents of every kind cordon's scanner looks for, and the
// ground truth: which incidents were injected, with which sessions and
// requests. It is seeded and deterministic: one Config gives one log.
//
// The benign traffic models many users with several devices each: office
// desktops behind one NAT address per office, laptops that move between the
// office and home, phones on carrier NAT (a new IPv4 address within the
// carrier's ASN from one request to the next), IPv6 privacy addresses that
// rotate within a /64, dual-stack clients switching between IPv4 and IPv6,
// shared home computers, logins, renewals, logouts with requests still in
// flight, idle expiry, many hosts and worker processes with per-process
// seq (and the odd worker restart), cache hits for static files, and log
// lines written out of order (at the end of each request, with per-host
// write lag and the rare host that ships its lines a minute or two late).
//
// It also models the noise that makes a real log hard: shared family
// computers (one device; A logs out, or B just logs in over A's session),
// corporate NAT with one browser image for a whole office, carrier-grade
// NAT pools shared by many subscribers at once, phones handed over from
// one operator to another, devices with a device cookie flapping between
// Wi-Fi and cellular, IPv6 privacy-address rotation, CDN and browser
// caches that answer a user with that user's own page, load balancers that
// retry a request on another host after the first attempt timed out, host
// clocks a few seconds apart, and log shippers that deliver late (beyond
// the scanner's skew), twice (at-least-once) or cut a line short.
//
// What it does not model (and the scanner documents as possible false
// positives): VPN toggling or Wi-Fi/cellular flapping by a client without a
// device cookie, browser updates mid-session, cookie-clearing extensions,
// host clocks further apart than the scanner's -clock-skew.
package synth

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// Config selects the log to write.
type Config struct {
	// Requests is how many lines to write (at least; injected incidents
	// that are under way when it is reached are finished).
	Requests int
	// Seed makes the log reproducible.
	Seed uint64
	// Start is the simulated time of the first request.
	Start time.Time
	// Incidents is how many incidents of each kind to inject (nine kinds;
	// ten with DBSCShare).
	Incidents int
	// Hosts and Workers shape the server fleet.
	Hosts, Workers int
	// Rate is the mean number of requests per simulated second; 0 gives
	// each device a visit every 20 minutes or so (about 8 requests per
	// second for every 100,000 requests of the log).
	Rate float64
	// NoASN leaves out the asn field (a writer without an ASN lookup).
	NoASN bool
	// DBSCShare is the fraction of sessions (0 to 1) whose browser
	// registers a device-bound session (DBSC) right after logging in: it
	// refreshes its bound cookie every DBSCTTL, now and then too late (one
	// request goes out unbound first: benign), and the generator injects
	// Incidents incidents of a tenth kind, dbsc-copy, where another client
	// presents a copy of such a session's cookie. 0, the default, writes
	// exactly the log of earlier versions.
	DBSCShare float64
}

// DBSCTTL is the bound cookie's life in generated logs (cordon's default).
const DBSCTTL = 10 * time.Minute

// DefaultConfig is a small log: 100,000 requests, 3 incidents per kind.
func DefaultConfig() Config {
	return Config{
		Requests:  100000,
		Seed:      1,
		Start:     time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC),
		Incidents: 3,
		Hosts:     8,
		Workers:   4,
	}
}

// Incident is one injected incident: the rule that must find it and the
// sessions and requests involved.
type Incident struct {
	ID         string   `json:"id"`
	Rule       string   `json:"rule"`
	Sessions   []string `json:"sessions"`
	Principals []string `json:"principals"`
	Requests   []string `json:"requests"`
	At         string   `json:"at"`
	Note       string   `json:"note"`
}

// Truth is what Generate injected.
type Truth struct {
	Seed uint64 `json:"seed"`
	// Requests counts the whole lines written, duplicates included.
	Requests int `json:"requests"`
	Sessions int `json:"sessions"`
	// Noise counts the benign look-alikes written, by kind.
	Noise     map[string]int `json:"noise"`
	Truncated int            `json:"truncated"` // lines cut short (malformed)
	Incidents []Incident     `json:"incidents"`
}

type isp struct {
	asn int64
	v4  [2]byte // a /16
	v6  [4]byte // a /32
}

type device struct {
	id        int
	kind      int // kindOffice, kindLaptop, kindPhone, kindHome
	dev       string
	ua        string
	users     []int
	office    int
	home      int
	dual      bool
	sid       string
	uid       int
	created   int64
	lastUse   int64
	inVisit   bool
	left      int // requests left in the visit
	onWifi    bool
	useV6     bool
	cgnat     netip.Addr
	v6        netip.Addr
	injected  bool
	loginStep int
	carrier   int  // the operator of a phone's cellular connection
	flappy    bool // this visit, flaps between Wi-Fi and cellular
	hold      bool // an incident is under way: do not end the visit
	// handedOver: the phone moved to another operator once (twice could
	// bring it back within minutes: flapping, which a phone without a
	// device cookie is not modelled doing)
	handedOver bool
	leaked     bool  // holds another device's session, set on it by a leak
	bound      bool  // the session is device-bound (DBSC) to this browser's key
	boundTo    int64 // when its bound cookie ends
}

const (
	kindOffice = iota
	kindLaptop
	kindPhone
	kindHome
)

type proc struct {
	host string
	pid  int
	seq  int64
}

type item struct {
	t  int64
	fn func()
}

type outLine struct {
	wt   int64
	line []byte
	keep bool // part of an incident: never cut short
}

type gen struct {
	cfg      Config
	rng      *rand.Rand
	now      int64
	queue    []item
	out      []outLine
	w        *bufio.Writer
	written  int
	emitted  int
	devices  []*device
	users    int
	homes    []netip.Addr // home NAT IPv4 per home
	homeV6   [][8]byte
	homeISP  []int
	offices  []netip.Addr
	offISP   []int
	isps     []isp
	carriers []isp
	hosting  isp
	procs    []*proc
	hostLag  map[string]int64
	active   []*device
	sessions int
	truth    Truth
	pending  int
	buf      []byte
	cur      *device // the device whose request is being made
	skew     map[string]int64
	stall    map[string]int64 // host -> until when its shipper is stalled
	recent   [][]byte         // the last lines written, for redelivery
	redo     []outLine
	corpUA   []string // per office: "" or the one browser image it runs
	// needBound makes pickActive pick only devices whose session is
	// device-bound.
	needBound bool
}

var browserUAs = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
}

var phoneUAs = []string{
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
}

var attackerUAs = []string{
	"python-requests/2.32.3",
	"curl/8.11.0",
	"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
}

var pages = []string{"/", "/inbox", "/notifications", "/settings", "/api/feed", "/api/messages", "/projects", "/projects/42", "/search", "/profile", "/billing", "/api/notifications/count"}

const (
	second    = int64(time.Second)
	idleLimit = 30 * 60 * second
	renewAge  = 20 * 60 * second
)

// Generate writes the log to w and returns the ground truth.
func Generate(cfg Config, w io.Writer) (*Truth, error) {
	def := DefaultConfig()
	if cfg.Requests <= 0 {
		cfg.Requests = def.Requests
	}
	if cfg.Start.IsZero() {
		cfg.Start = def.Start
	}
	if cfg.Hosts <= 0 {
		cfg.Hosts = def.Hosts
	}
	if cfg.Workers <= 0 {
		cfg.Workers = def.Workers
	}
	if cfg.Incidents < 0 {
		cfg.Incidents = 0
	}
	g := &gen{
		cfg:     cfg,
		rng:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		now:     cfg.Start.UnixNano(),
		w:       bufio.NewWriterSize(w, 1<<20),
		hostLag: map[string]int64{},
		skew:    map[string]int64{},
		stall:   map[string]int64{},
	}
	g.truth.Noise = map[string]int{}
	g.truth.Seed = cfg.Seed
	g.setup()
	rate := cfg.Rate
	if rate <= 0 {
		rate = float64(len(g.devices)) * 16 / (float64(g.gap())/float64(second) + 16*9)
	}
	g.scheduleIncidents(float64(cfg.Requests) / rate)
	for len(g.queue) > 0 && (g.emitted < cfg.Requests || g.pending > 0) {
		it := g.popItem()
		if it.t > g.now {
			g.now = it.t
		}
		it.fn()
		g.flush(g.now)
	}
	g.flush(math.MaxInt64)
	for len(g.redo) > 0 {
		g.w.Write(g.redo[0].line)
		g.written++
		g.redo = g.redo[1:]
	}
	if err := g.w.Flush(); err != nil {
		return nil, fmt.Errorf("synth: write: %w", err)
	}
	g.truth.Requests = g.written
	g.truth.Sessions = g.sessions
	return &g.truth, nil
}

func (g *gen) hex16() string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := g.rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return hex.EncodeToString(b[:])
}

func (g *gen) exp(mean float64) float64 { return g.rng.ExpFloat64() * mean }

func (g *gen) setup() {
	firsts := []byte{24, 31, 46, 62, 77, 81, 86, 90, 109, 151, 176, 188, 212, 217}
	for i := 0; i < 8; i++ {
		g.isps = append(g.isps, isp{asn: 3300 + int64(i)*17, v4: [2]byte{firsts[g.rng.IntN(len(firsts))], byte(g.rng.IntN(256))}, v6: [4]byte{0x2a, 0x02, byte(i), byte(g.rng.IntN(256))}})
	}
	for i := 0; i < 3; i++ {
		// Carrier-grade NAT pools span several /16s; the same subscriber
		// shows up from any of them.
		g.carriers = append(g.carriers, isp{asn: 21000 + int64(i)*113, v4: [2]byte{100 + byte(i), byte(64 + g.rng.IntN(64))}, v6: [4]byte{0x26, 0x07, 0xfb, byte(0x10 + i)}})
	}
	g.hosting = isp{asn: 64999, v4: [2]byte{45, 133}, v6: [4]byte{0x2a, 0x0e, 0xbe, 0xef}}
	devicesWanted := max(40, g.cfg.Requests/150)
	nOffices := max(3, devicesWanted/60)
	for i := 0; i < nOffices; i++ {
		k := g.rng.IntN(len(g.isps))
		g.offices = append(g.offices, g.v4In(g.isps[k]))
		g.offISP = append(g.offISP, k)
		ua := ""
		if g.rng.Float64() < 0.5 {
			ua = browserUAs[g.rng.IntN(len(browserUAs))] // one image for the whole office
		}
		g.corpUA = append(g.corpUA, ua)
	}
	for i := 0; i < g.cfg.Hosts; i++ {
		host := "web-" + strconv.Itoa(i+1)
		g.hostLag[host] = int64(g.rng.IntN(300)) * int64(time.Millisecond)
		// Host clocks: most within 50 ms, a few off by up to 2 s.
		g.skew[host] = int64(g.rng.IntN(100)-50) * int64(time.Millisecond)
		if g.rng.Float64() < 0.3 {
			g.skew[host] = int64(g.rng.IntN(4000)-2000) * int64(time.Millisecond)
		}
		for j := 0; j < g.cfg.Workers; j++ {
			g.procs = append(g.procs, &proc{host: host, pid: 1000 + g.rng.IntN(60000)})
		}
	}
	for len(g.devices) < devicesWanted {
		u := g.users
		g.users++
		home := g.newHome()
		if g.rng.Float64() < 0.7 {
			g.addDevice(kindPhone, []int{u}, home)
		}
		if g.rng.Float64() < 0.5 {
			g.addDevice(kindOffice, []int{u}, home)
		} else {
			g.addDevice(kindLaptop, []int{u}, home)
		}
		if g.rng.Float64() < 0.3 {
			users := []int{u}
			if g.rng.Float64() < 0.4 {
				users = append(users, g.users)
				g.users++
			}
			g.addDevice(kindHome, users, home)
		}
	}
	// Devices start at random moments of the first few minutes.
	for _, d := range g.devices {
		d := d
		g.at(g.now+int64(g.exp(float64(g.gap()))), func() { g.startVisit(d) })
	}
}

func (g *gen) newHome() int {
	k := g.rng.IntN(len(g.isps))
	g.homes = append(g.homes, g.v4In(g.isps[k]))
	var p [8]byte
	copy(p[:4], g.isps[k].v6[:])
	for i := 4; i < 8; i++ {
		p[i] = byte(g.rng.IntN(256))
	}
	g.homeV6 = append(g.homeV6, p)
	g.homeISP = append(g.homeISP, k)
	return len(g.homes) - 1
}

func (g *gen) v4In(p isp) netip.Addr {
	return netip.AddrFrom4([4]byte{p.v4[0], p.v4[1], byte(g.rng.IntN(256)), byte(1 + g.rng.IntN(254))})
}

func (g *gen) v6In(prefix [8]byte) netip.Addr {
	var b [16]byte
	copy(b[:8], prefix[:])
	v := g.rng.Uint64()
	for i := 0; i < 8; i++ {
		b[8+i] = byte(v >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

func (g *gen) addDevice(kind int, users []int, home int) {
	d := &device{id: len(g.devices), kind: kind, users: users, home: home, office: g.rng.IntN(len(g.offices))}
	d.carrier = home % len(g.carriers)
	if g.rng.Float64() < 0.9 {
		d.dev = g.hex16()
	}
	if kind == kindPhone {
		d.ua = phoneUAs[g.rng.IntN(len(phoneUAs))]
	} else {
		d.ua = browserUAs[g.rng.IntN(len(browserUAs))]
	}
	if kind == kindOffice && g.corpUA[d.office] != "" {
		d.ua = g.corpUA[d.office]
	}
	d.dual = kind == kindPhone || g.rng.Float64() < 0.6
	g.devices = append(g.devices, d)
}

// gap is the mean time between visits of one device: about 20 minutes, or
// what makes the fleet produce cfg.Rate requests per second when set.
func (g *gen) gap() int64 {
	if g.cfg.Rate <= 0 {
		return 20 * 60 * second
	}
	perVisit := 16.0
	visitLen := perVisit * 9
	gap := float64(len(g.devices))*perVisit/g.cfg.Rate - visitLen
	if gap < 60 {
		gap = 60
	}
	return int64(gap * float64(second))
}

// The event queue: a min-heap of items by time (FIFO among equals).
func (g *gen) at(t int64, fn func()) {
	g.queue = append(g.queue, item{t: t, fn: fn})
	i := len(g.queue) - 1
	for i > 0 {
		p := (i - 1) / 2
		if g.queue[p].t <= g.queue[i].t {
			break
		}
		g.queue[i], g.queue[p] = g.queue[p], g.queue[i]
		i = p
	}
}

func (g *gen) popItem() item {
	q := g.queue
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q[r].t < q[l].t {
			m = r
		}
		if q[i].t <= q[m].t {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	g.queue = q
	return top
}

// ctx is the client side of a request: where it comes from.
type ctx struct {
	ip  netip.Addr
	asn int64
	ua  string
	dev string
}

// where returns the device's current client context, moving it between
// networks the way such a device moves.
func (g *gen) where(d *device) ctx {
	c := ctx{ua: d.ua, dev: d.dev}
	homeISP := g.isps[g.homeISP[d.home]]
	switch d.kind {
	case kindOffice:
		c.ip, c.asn = g.offices[d.office], g.isps[g.offISP[d.office]].asn
		return c
	case kindLaptop:
		hour := time.Unix(0, g.now).UTC().Hour()
		if hour >= 8 && hour < 17 && d.onWifi {
			c.ip, c.asn = g.offices[d.office], g.isps[g.offISP[d.office]].asn
			return c
		}
	case kindPhone:
		if d.flappy && d.dev != "" && g.rng.Float64() < 0.4 {
			// At the edge of the Wi-Fi: back and forth between Wi-Fi and
			// cellular (only devices with a device cookie, which tells the
			// scanner it is one device).
			d.onWifi = !d.onWifi
			g.truth.Noise["wifi-cellular-flap"]++
		}
		if !d.onWifi && !d.handedOver && g.rng.Float64() < 0.003 {
			d.handedOver = true
			// Handed over to another operator (roaming, a second SIM): for
			// good, or at least for longer than the scanner's window.
			d.carrier = (d.carrier + 1 + g.rng.IntN(len(g.carriers)-1)) % len(g.carriers)
			d.cgnat, d.v6 = netip.Addr{}, netip.Addr{}
			g.truth.Noise["operator-handover"]++
		}
		if !d.onWifi {
			car := g.carriers[d.carrier]
			c.asn = car.asn
			if d.dual && g.rng.Float64() < 0.15 {
				d.useV6 = !d.useV6 // Happy Eyeballs picks the other family
			}
			if d.useV6 && !d.v6.IsValid() {
				d.v6 = g.v6In(carrierPrefix(g, car))
			}
			if d.useV6 && d.v6.IsValid() {
				if g.rng.Float64() < 0.05 {
					d.v6 = g.v6In(prefix64(d.v6)) // privacy address rotates
				}
				c.ip = d.v6
				return c
			}
			if !d.cgnat.IsValid() || g.rng.Float64() < 0.2 {
				// Carrier-grade NAT: another address of a small pool that
				// many subscribers share at once, same ASN.
				d.cgnat = netip.AddrFrom4([4]byte{car.v4[0], car.v4[1], byte(g.rng.IntN(4)), byte(1 + g.rng.IntN(32))})
			}
			c.ip = d.cgnat
			return c
		}
		if g.rng.Float64() < 0.01 {
			d.onWifi = false // walked out of the house: cellular from now on
		}
	}
	c.asn = homeISP.asn
	if d.dual && g.rng.Float64() < 0.1 {
		d.useV6 = !d.useV6
	}
	if d.dual && d.useV6 {
		if !d.v6.IsValid() || prefix64(d.v6) != g.homeV6[d.home] || g.rng.Float64() < 0.03 {
			d.v6 = g.v6In(g.homeV6[d.home])
		}
		c.ip = d.v6
		return c
	}
	c.ip = g.homes[d.home]
	return c
}

// carrierPrefix is a new /64 of the carrier for a subscriber.
func carrierPrefix(g *gen, car isp) [8]byte {
	var p [8]byte
	copy(p[:4], car.v6[:])
	for i := 4; i < 8; i++ {
		p[i] = byte(g.rng.IntN(256))
	}
	return p
}

func prefix64(a netip.Addr) [8]byte {
	b := a.As16()
	var p [8]byte
	copy(p[:], b[:8])
	return p
}

func (g *gen) startVisit(d *device) {
	d.inVisit = true
	d.left = 4 + g.rng.IntN(25)
	moved := g.now-d.lastUse > idleLimit || d.lastUse == 0
	switch d.kind {
	case kindPhone:
		// Where a device is changes only between visits far apart.
		if moved {
			d.onWifi = g.rng.Float64() < 0.5
		}
		if !d.onWifi && moved {
			d.v6 = g.v6In(carrierPrefix(g, g.carriers[d.carrier]))
			d.cgnat = netip.Addr{}
		}
		d.flappy = d.dev != "" && g.rng.Float64() < 0.02
	case kindLaptop:
		if moved {
			d.onWifi = g.rng.Float64() < 0.7 // at the office if it is office hours
		}
	}
	user := d.users[g.rng.IntN(len(d.users))]
	g.cur = d
	defer func() { g.cur = nil }()
	c := g.where(d)
	if d.leaked {
		d.sid, d.leaked = "", false // the leaked cookie is gone (it expired in the browser)
	}
	if d.sid != "" && g.now-d.lastUse > idleLimit {
		g.emit(c, nil, line{method: "GET", path: "/", status: 302, sidIn: d.sid, uidIn: uname(d.uid), event: "expire", detail: "idle"})
		d.sid = ""
	} else if d.sid != "" && d.uid != user && !d.injected && g.rng.Float64() < 0.5 {
		// The family computer: B logs in over A's session without A
		// logging out; the login form still carries A's cookie.
		old, olduid := d.sid, uname(d.uid)
		d.uid = user
		d.sid = g.newSession()
		d.bound = false // a new session, not registered
		d.created, d.lastUse = g.now, g.now
		g.emit(c, nil, line{method: "GET", path: "/login", status: 200, sidIn: old, uidIn: olduid, uidView: olduid})
		g.emit(c, nil, line{method: "POST", path: "/login", status: 303, sidIn: old, uidIn: olduid, sidOut: d.sid, uidOut: uname(user), uidView: uname(user), event: "login"})
		g.truth.Noise["family-computer-switch"]++
		g.setActive(d)
	} else if d.sid != "" && d.uid != user {
		g.emit(c, nil, line{method: "POST", path: "/logout", status: 303, sidIn: d.sid, uidIn: uname(d.uid), event: "logout"})
		g.truth.Noise["family-computer-logout"]++
		d.sid = ""
	}
	d.uid = user
	g.at(g.now+int64(g.exp(2)*float64(second))+int64(time.Millisecond), func() { g.step(d) })
}

func uname(u int) string { return "u_" + strconv.Itoa(u) }

// step makes the device's next request of the visit.
func (g *gen) step(d *device) {
	g.cur = d
	defer func() { g.cur = nil }()
	c := g.where(d)
	user := uname(d.uid)
	next := func(mean float64) {
		g.at(g.now+int64(g.exp(mean)*float64(second))+int64(50*time.Millisecond), func() { g.step(d) })
	}
	if d.sid == "" {
		if d.loginStep == 0 {
			d.loginStep = 1
			g.emit(c, nil, line{method: "GET", path: "/login", status: 200})
			next(6)
			return
		}
		d.loginStep = 0
		d.sid = g.newSession()
		d.created = g.now
		d.lastUse = g.now
		g.emit(c, nil, line{method: "POST", path: "/login", status: 303, sidOut: d.sid, uidOut: user, uidView: user, event: "login"})
		g.setActive(d)
		d.bound = false
		if g.cfg.DBSCShare > 0 && g.rng.Float64() < g.cfg.DBSCShare {
			g.registerDBSC(d, user)
		}
		next(3)
		return
	}
	if d.bound && g.now >= d.boundTo {
		g.refreshDBSC(d, c, user)
	}
	d.lastUse = g.now
	d.left--
	if d.left <= 0 && d.hold {
		d.left = 1 // an incident under way on this device: the visit goes on
	}
	if d.left <= 0 {
		d.inVisit = false
		if g.rng.Float64() < 0.1 {
			old := d.sid
			g.emit(c, nil, line{method: "POST", path: "/logout", status: 303, sidIn: old, uidIn: user, event: "logout"})
			d.sid = ""
			if g.rng.Float64() < 0.3 {
				// A request of another tab was already on its way.
				g.at(g.now+int64(g.rng.Float64()*3*float64(second))+1, func() {
					g.emit(g.where(d), nil, line{method: "GET", path: "/api/notifications/count", status: 200, sidIn: old, uidIn: user, uidView: user})
				})
			}
		} else {
			g.emit(c, nil, g.page(d, user))
		}
		g.at(g.now+int64(g.exp(float64(g.gap()))), func() { g.startVisit(d) })
		return
	}
	if g.now-d.created > renewAge {
		old := d.sid
		d.sid = g.newSession()
		d.created = g.now
		// A device-bound session's binding goes with it through the
		// renewal; that line then is never cut short, so the new session's
		// key is known.
		g.emit(c, nil, line{method: "GET", path: pages[g.rng.IntN(len(pages))], status: 200, sidIn: old, uidIn: user, sidOut: d.sid, uidOut: user, uidView: user, event: "renew", keep: d.bound})
		if g.rng.Float64() < 0.2 {
			// A parallel request still carried the old cookie.
			g.at(g.now+int64(g.rng.Float64()*float64(second))+1, func() {
				g.emit(g.where(d), nil, line{method: "GET", path: "/api/feed", status: 200, sidIn: old, uidIn: user, uidView: user})
			})
		}
		next(9)
		return
	}
	g.emit(c, nil, g.page(d, user))
	next(9)
}

func (g *gen) page(d *device, user string) line {
	if g.rng.Float64() < 0.15 {
		// Static files: a shared cache answers most of them, and they carry
		// no session.
		l := line{method: "GET", path: "/static/app." + strconv.Itoa(g.rng.IntN(5)) + ".js", status: 200, cache: "hit"}
		if g.rng.Float64() < 0.3 {
			l.sidIn, l.uidIn = d.sid, user // the browser sends its cookie along
		}
		if g.rng.Float64() < 0.2 {
			l.cache = "miss"
		}
		return l
	}
	l := line{method: "GET", path: pages[g.rng.IntN(len(pages))], status: 200, sidIn: d.sid, uidIn: user, uidView: user}
	if g.rng.Float64() < 0.05 {
		// A CDN or browser cache keyed by user answered with the user's
		// own page: a cache hit, and no leak.
		l.cache = "hit"
		g.truth.Noise["cache-hit-own-page"]++
		return l
	}
	if g.rng.Float64() < 0.1 {
		l.method = "POST"
		l.status = 303
	}
	return l
}

func (g *gen) newSession() string {
	g.sessions++
	return g.hex16()
}

func (g *gen) setActive(d *device) {
	g.active = append(g.active, d)
	if len(g.active) > 4096 {
		g.active = g.active[len(g.active)-2048:]
	}
}

// line is the server side of a request.
type line struct {
	method, path                 string
	status                       int
	cache                        string
	sidIn, uidIn, sidOut, uidOut string
	uidView, event, detail       string
	keep                         bool // part of an incident: no delivery noise
}

// emit writes a request arriving now from client c, handled by p (a random
// worker when nil). It returns the request id.
func (g *gen) emit(c ctx, p *proc, l line) string {
	if g.cur != nil && g.cur.injected {
		l.keep = true
	}
	if p == nil {
		p = g.pickProc()
	}
	id := g.hex16()
	dur := g.exp(40)
	if g.rng.Float64() < 0.01 {
		dur += g.exp(3000)
	}
	if !l.keep && l.sidOut == "" && l.event == "" && g.rng.Float64() < 5e-4 {
		// The first attempt timed out at the load balancer, which retried
		// the same request (same id) on another host.
		timeout := 1 + g.rng.Float64()*4
		first := l
		first.status = 0
		g.write(c, p, first, id, timeout*1000)
		g.truth.Noise["lb-retry"]++
		g.at(g.now+int64(timeout*float64(second)), func() {
			q := g.pickProc()
			for q.host == p.host {
				q = g.pickProc()
			}
			g.write(c, q, l, id, dur)
		})
		return id
	}
	g.write(c, p, l, id, dur)
	return id
}

func (g *gen) pickProc() *proc {
	p := g.procs[g.rng.IntN(len(g.procs))]
	if g.rng.Float64() < 2e-5 {
		// The worker restarts: new pid, seq from 1.
		p.pid = 1000 + g.rng.IntN(60000)
		p.seq = 0
	}
	return p
}

// write formats one line of p arriving now and queues it for the time its
// host's shipper delivers it.
func (g *gen) write(c ctx, p *proc, l line, id string, dur float64) {
	p.seq++
	g.emitted++
	lag := g.hostLag[p.host] + int64(g.exp(0.2)*float64(second))
	if g.rng.Float64() < 5e-5 {
		lag += 60*second + g.rng.Int64N(60*second) // a host ships its lines late
	}
	if !l.keep {
		if until := g.stall[p.host]; g.now < until {
			lag += 6*60*second + g.rng.Int64N(2*60*second) // beyond the scanner's skew
			g.truth.Noise["late-beyond-skew"]++
		} else if g.rng.Float64() < 2e-6 {
			g.stall[p.host] = g.now + 20*second // the shipper stalls for 20 s
		}
	}
	wt := g.now + int64(dur*float64(time.Millisecond)) + lag
	b := g.buf[:0]
	b = append(b, `{"v":1,"ts":"`...)
	b = time.Unix(0, g.now+g.skew[p.host]).UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	b = append(b, `","dur_ms":`...)
	b = strconv.AppendFloat(b, math.Round(dur*100)/100, 'f', -1, 64)
	b = append(b, `,"req":"`...)
	b = append(b, id...)
	b = append(b, `","host":"`...)
	b = append(b, p.host...)
	b = append(b, `","pid":`...)
	b = strconv.AppendInt(b, int64(p.pid), 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, p.seq, 10)
	b = append(b, `,"ip":"`...)
	b = c.ip.AppendTo(b)
	b = append(b, '"')
	b = appendField(b, "ua", c.ua)
	b = appendField(b, "dev", c.dev)
	if c.asn != 0 && !g.cfg.NoASN {
		b = append(b, `,"asn":`...)
		b = strconv.AppendInt(b, c.asn, 10)
	}
	b = appendField(b, "cache", l.cache)
	b = appendField(b, "method", l.method)
	b = appendField(b, "path", l.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(l.status), 10)
	b = appendField(b, "sid_in", l.sidIn)
	b = appendField(b, "uid_in", l.uidIn)
	b = appendField(b, "sid_out", l.sidOut)
	b = appendField(b, "uid_out", l.uidOut)
	b = appendField(b, "uid_view", l.uidView)
	b = appendField(b, "event", l.event)
	b = appendField(b, "detail", l.detail)
	b = append(b, "}\n"...)
	g.buf = b
	g.pushOut(outLine{wt: wt, line: append([]byte(nil), b...), keep: l.keep})
}

func appendField(b []byte, k, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, k...)
	b = append(b, `":"`...)
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// The output buffer orders lines by the time they are written.
func (g *gen) pushOut(o outLine) {
	g.out = append(g.out, o)
	i := len(g.out) - 1
	for i > 0 {
		p := (i - 1) / 2
		if g.out[p].wt <= g.out[i].wt {
			break
		}
		g.out[i], g.out[p] = g.out[p], g.out[i]
		i = p
	}
}

func (g *gen) flush(upTo int64) {
	for len(g.out) > 0 && g.out[0].wt <= upTo {
		q := g.out
		top := q[0]
		n := len(q) - 1
		q[0] = q[n]
		q = q[:n]
		i := 0
		for {
			l := 2*i + 1
			if l >= n {
				break
			}
			m := l
			if r := l + 1; r < n && q[r].wt < q[l].wt {
				m = r
			}
			if q[i].wt <= q[m].wt {
				break
			}
			q[i], q[m] = q[m], q[i]
			i = m
		}
		g.out = q
		g.deliver(top)
	}
	for len(g.redo) > 0 && (g.redo[0].wt <= upTo) {
		o := g.redo[0]
		g.redo = g.redo[1:]
		g.w.Write(o.line)
		g.written++
	}
}

// deliver writes one line the way a log shipper does: now and then cut
// short (a crash mid-write), and now and then a batch delivered again
// (at-least-once), right away or minutes later.
func (g *gen) deliver(o outLine) {
	if !o.keep && g.rng.Float64() < 2e-5 {
		cut := 1 + g.rng.IntN(len(o.line)-2)
		g.w.Write(o.line[:cut])
		g.w.WriteByte('\n')
		g.truth.Truncated++
		return
	}
	g.w.Write(o.line)
	g.written++
	if len(g.recent) == 32 {
		g.recent = g.recent[1:]
	}
	g.recent = append(g.recent, o.line)
	if g.rng.Float64() < 5e-5 {
		k := 1 + g.rng.IntN(len(g.recent))
		at := o.wt
		if g.rng.Float64() < 0.3 {
			at += 6*60*second + g.rng.Int64N(2*60*second) // after a reconnect
		}
		for _, l := range g.recent[len(g.recent)-k:] {
			i := len(g.redo)
			for i > 0 && g.redo[i-1].wt > at {
				i--
			}
			g.redo = slices.Insert(g.redo, i, outLine{wt: at, line: l})
		}
		g.truth.Noise["redelivered-lines"] += k
	}
}

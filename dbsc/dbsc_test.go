package dbsc_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cordon-sec/cordon/dbsc"
	"github.com/cordon-sec/cordon/dbsc/dbsctest"
)

var enc = base64.RawURLEncoding

// The draft's header examples, written by this package.
func TestHeadersMatchTheDraftsExamples(t *testing.T) {
	got, err := dbsc.RegistrationHeader([]string{"ES256"}, "reg", "cv", "ac")
	if want := `(ES256);path="reg";challenge="cv";authorization="ac"`; err != nil || got != want {
		t.Errorf("registration = %q, %v; want %q", got, err, want)
	}
	got, err = dbsc.RegistrationHeader([]string{"ES256", "RS256"}, "reg", "cv", "")
	if want := `(ES256 RS256);path="reg";challenge="cv"`; err != nil || got != want {
		t.Errorf("registration = %q, %v; want %q", got, err, want)
	}
	got, err = dbsc.ChallengeHeader("new challenge", "my session")
	if want := `"new challenge";id="my session"`; err != nil || got != want {
		t.Errorf("challenge = %q, %v; want %q", got, err, want)
	}
	got, err = dbsc.ChallengeHeader(`a"b\c`, "s")
	if want := `"a\"b\\c";id="s"`; err != nil || got != want {
		t.Errorf("escaped challenge = %q, %v; want %q", got, err, want)
	}
	for _, bad := range [][]string{{"none"}, {"HS256"}, {}, {"ES256 RS256"}} {
		if h, err := dbsc.RegistrationHeader(bad, "reg", "cv", ""); err == nil {
			t.Errorf("RegistrationHeader(%q) = %q, want an error", bad, h)
		}
	}
	if h, err := dbsc.ChallengeHeader("line\nbreak", "s"); err == nil {
		t.Errorf("ChallengeHeader with a newline = %q, want an error", h)
	}
}

// Both forms of a request header field: the draft's sf-string and the raw
// value Chromium sends.
func TestHeaderStringAcceptsBothForms(t *testing.T) {
	for in, want := range map[string]string{
		`"session-id"`:                    "session-id",
		`session-id`:                      "session-id",
		` "abc";x=1`:                      "abc",
		`"a\"b"`:                          `a"b`,
		`eyJh.eyJq.sig-_`:                 "eyJh.eyJq.sig-_",
		`"eyJhbGciOiJFUzI1NiJ9.e30.c2ln"`: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
	} {
		got, err := dbsc.HeaderString(in)
		if err != nil || got != want {
			t.Errorf("HeaderString(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{``, `""`, `"unterminated`, `"a"b`, `raw value`, `a,b`, `"bad\escape"`, "\"ctl\x01\"", strings.Repeat("a", dbsc.MaxHeaderLen+1), `"x\`} {
		if got, err := dbsc.HeaderString(bad); !errors.Is(err, dbsc.ErrHeader) {
			t.Errorf("HeaderString(%q) = %q, %v; want ErrHeader", bad, got, err)
		}
	}
}

// The draft's example JWK (from its proof example) parses, and its RFC 7638
// thumbprint is computed over the required members in order.
func TestDraftExampleJWK(t *testing.T) {
	k, err := dbsc.ParseJWK([]byte(`{"kty":"EC","crv":"P-256","x":"6_GB2voQ0qroMh6OlDFCFS_SJriQi1PTvvBOhGZ3bHI","y":"IegOJULyE7SxH_Cd1KCER7lWBvGFHQ-h0xyjzUjEIWE"}`))
	if err != nil {
		t.Fatal(err)
	}
	if k.Alg() != dbsc.ES256 {
		t.Errorf("alg = %s", k.Alg())
	}
	want := `{"crv":"P-256","kty":"EC","x":"6_GB2voQ0qroMh6OlDFCFS_SJriQi1PTvvBOhGZ3bHI","y":"IegOJULyE7SxH_Cd1KCER7lWBvGFHQ-h0xyjzUjEIWE"}`
	if string(k.JWK()) != want {
		t.Errorf("JWK = %s\nwant  %s", k.JWK(), want)
	}
	back, err := dbsc.ParseJWK(k.JWK())
	if err != nil || !back.Equal(k) || back.Thumbprint() != k.Thumbprint() {
		t.Errorf("round trip: %v", err)
	}
}

// RFC 7638 section 3.1's example RSA key and its thumbprint.
func TestRFC7638Thumbprint(t *testing.T) {
	k, err := dbsc.ParseJWK([]byte(`{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.Thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("thumbprint = %s, want %s", got, want)
	}
}

func clients(t *testing.T) map[string]*dbsctest.Client {
	return map[string]*dbsctest.Client{"ES256": dbsctest.NewES256(), "RS256": dbsctest.NewRS256(2048)}
}

func TestRegistrationAndRefreshVerify(t *testing.T) {
	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			p, err := dbsc.VerifyRegistration(c.RegistrationProof("chal-1", "auth-1"))
			if err != nil {
				t.Fatal(err)
			}
			if p.Challenge != "chal-1" || p.Authorization != "auth-1" || !p.Key.Equal(c.Key()) {
				t.Errorf("proof = %+v", p)
			}
			stored, err := dbsc.ParseJWK(p.Key.JWK())
			if err != nil {
				t.Fatal(err)
			}
			r, err := dbsc.VerifyRefresh(c.RefreshProof("chal-2"), stored)
			if err != nil || r.Challenge != "chal-2" {
				t.Fatalf("refresh: %+v, %v", r, err)
			}
			// A thief's key cannot refresh the registered session.
			thief := dbsctest.NewES256()
			if _, err := dbsc.VerifyRefresh(thief.RefreshProof("chal-2"), stored); !errors.Is(err, dbsc.ErrProof) {
				t.Errorf("a proof by another key: %v, want ErrProof", err)
			}
		})
	}
}

// Every malformed or forged proof is ErrProof, never a panic, never a
// verified key.
func TestHostileProofs(t *testing.T) {
	es := dbsctest.NewES256()
	rs := dbsctest.NewRS256(2048)
	jwkES := json.RawMessage(es.Key().JWK())
	jwkRS := json.RawMessage(rs.Key().JWK())
	good := es.RegistrationProof("c", "")
	parts := strings.Split(good, ".")
	small := dbsctest.NewRS256(1024)
	big, _ := rsa.GenerateKey(rand.Reader, 4096+64)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384b, _ := p384.PublicKey.Bytes()
	h := func(m map[string]any) map[string]any { return m }
	cases := map[string]string{
		"alg none":              enc.EncodeToString([]byte(`{"alg":"none","typ":"dbsc+jwt","jwk":`+string(jwkES)+`}`)) + "." + parts[1] + ".",
		"alg none, signature":   enc.EncodeToString([]byte(`{"alg":"none","typ":"dbsc+jwt","jwk":`+string(jwkES)+`}`)) + "." + parts[1] + "." + parts[2],
		"alg HS256":             es.Sign(h(map[string]any{"alg": "HS256", "typ": "dbsc+jwt", "jwk": jwkES}), map[string]any{"jti": "c"}),
		"alg missing":           es.Sign(h(map[string]any{"typ": "dbsc+jwt", "jwk": jwkES}), map[string]any{"jti": "c"}),
		"alg lower case":        es.Sign(h(map[string]any{"alg": "es256", "typ": "dbsc+jwt", "jwk": jwkES}), map[string]any{"jti": "c"}),
		"alg RS256 on EC key":   es.Sign(h(map[string]any{"alg": "RS256", "typ": "dbsc+jwt", "jwk": jwkES}), map[string]any{"jti": "c"}),
		"alg ES256 on RSA key":  rs.Sign(h(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": jwkRS}), map[string]any{"jti": "c"}),
		"typ JWT":               es.Sign(h(map[string]any{"alg": "ES256", "typ": "JWT", "jwk": jwkES}), map[string]any{"jti": "c"}),
		"typ missing":           es.Sign(h(map[string]any{"alg": "ES256", "jwk": jwkES}), map[string]any{"jti": "c"}),
		"crit":                  es.Sign(h(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": jwkES, "crit": []string{"b64"}}), map[string]any{"jti": "c"}),
		"no jwk":                es.RefreshProof("c"),
		"jwk of another key":    es.Sign(h(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": json.RawMessage(dbsctest.NewES256().Key().JWK())}), map[string]any{"jti": "c"}),
		"jwk with private d":    es.Sign(h(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": map[string]string{"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "d": "d"}}), map[string]any{"jti": "c"}),
		"jwk P-384":             es.Sign(h(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": map[string]string{"kty": "EC", "crv": "P-384", "x": enc.EncodeToString(p384b[1:49]), "y": enc.EncodeToString(p384b[49:])}}), map[string]any{"jti": "c"}),
		"jwk point off curve":   es.Sign(h(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": map[string]string{"kty": "EC", "crv": "P-256", "x": enc.EncodeToString(bytes.Repeat([]byte{1}, 32)), "y": enc.EncodeToString(bytes.Repeat([]byte{2}, 32))}}), map[string]any{"jti": "c"}),
		"jwk oct (HMAC)":        es.Sign(h(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": map[string]string{"kty": "oct", "k": "c2VjcmV0"}}), map[string]any{"jti": "c"}),
		"RSA 1024 bits":         small.RegistrationProof("c", ""),
		"RSA over 4096 bits":    (&bigSigner{k: big}).proof(),
		"RSA exponent 1":        es.Sign(h(map[string]any{"alg": "RS256", "typ": "dbsc+jwt", "jwk": map[string]string{"kty": "RSA", "n": enc.EncodeToString(rs.Public().(*rsa.PublicKey).N.Bytes()), "e": "AQ"}}), map[string]any{"jti": "c"}),
		"jti missing":           es.Sign(h(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": jwkES}), map[string]any{"authorization": "a"}),
		"jti empty":             es.Sign(h(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": jwkES}), map[string]any{"jti": ""}),
		"jti a number":          es.Sign(h(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": jwkES}), map[string]any{"jti": 7}),
		"jti too long":          es.Sign(h(map[string]any{"alg": "ES256", "typ": "dbsc+jwt", "jwk": jwkES}), map[string]any{"jti": strings.Repeat("c", 300)}),
		"duplicate alg":         es.SignRaw([]byte(`{"alg":"none","alg":"ES256","typ":"dbsc+jwt","jwk":`+string(jwkES)+`}`), []byte(`{"jti":"c"}`)),
		"duplicate jti":         es.SignRaw([]byte(`{"alg":"ES256","typ":"dbsc+jwt","jwk":`+string(jwkES)+`}`), []byte(`{"jti":"c","jti":"d"}`)),
		"payload not an object": es.SignRaw([]byte(`{"alg":"ES256","typ":"dbsc+jwt","jwk":`+string(jwkES)+`}`), []byte(`["c"]`)),
		"payload trailing data": es.SignRaw([]byte(`{"alg":"ES256","typ":"dbsc+jwt","jwk":`+string(jwkES)+`}`), []byte(`{"jti":"c"}{}`)),
		"header null":           es.SignRaw([]byte(`null`), []byte(`{"jti":"c"}`)),
		"tampered payload":      parts[0] + "." + enc.EncodeToString([]byte(`{"jti":"other"}`)) + "." + parts[2],
		"signature truncated":   parts[0] + "." + parts[1] + "." + parts[2][:40],
		"signature DER-sized":   parts[0] + "." + parts[1] + "." + enc.EncodeToString(make([]byte, 72)),
		"signature zero":        parts[0] + "." + parts[1] + "." + enc.EncodeToString(make([]byte, 64)),
		"padded base64":         parts[0] + "=." + parts[1] + "." + parts[2],
		"standard base64":       strings.ReplaceAll(strings.ReplaceAll(good, "-", "+"), "_", "/") + "+/",
		"two parts":             parts[0] + "." + parts[1],
		"four parts":            good + ".x",
		"empty":                 "",
		"huge":                  strings.Repeat("a", dbsc.MaxHeaderLen+1),
	}
	for name, jws := range cases {
		p, err := dbsc.VerifyRegistration(jws)
		if !errors.Is(err, dbsc.ErrProof) || p != nil {
			t.Errorf("%s: VerifyRegistration = %+v, %v; want ErrProof", name, p, err)
		}
		p, err = dbsc.VerifyRefresh(jws, es.Key())
		if !errors.Is(err, dbsc.ErrProof) || p != nil {
			if name != "no jwk" { // a refresh proof without jwk is exactly right
				t.Errorf("%s: VerifyRefresh = %+v, %v; want ErrProof", name, p, err)
			}
		}
	}
	// The oracle can fail: the well-formed proof the cases are cut from
	// verifies.
	if _, err := dbsc.VerifyRegistration(good); err != nil {
		t.Fatalf("the unmodified proof: %v", err)
	}
}

type bigSigner struct{ k *rsa.PrivateKey }

func (b *bigSigner) proof() string {
	jwk := map[string]string{"kty": "RSA", "n": enc.EncodeToString(b.k.N.Bytes()), "e": "AQAB"}
	c := dbsctest.NewRS256(2048) // signs with the wrong key; the size check comes first
	return c.Sign(map[string]any{"alg": "RS256", "typ": "dbsc+jwt", "jwk": jwk}, map[string]any{"jti": "c"})
}

func TestChallengesSingleUseBoundToSession(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := dbsc.NewChallenges(dbsc.ChallengeOptions{TTL: time.Minute, Now: func() time.Time { return now }})
	a, err := c.Issue("s1")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Consume(a, "s2"); !errors.Is(err, dbsc.ErrChallengeSession) {
		t.Errorf("another session's challenge: %v", err)
	}
	// Consumed by the failed attempt: no second try with the same one.
	if err := c.Consume(a, "s1"); !errors.Is(err, dbsc.ErrChallengeUnknown) {
		t.Errorf("after a wrong-session attempt: %v", err)
	}
	b, _ := c.Issue("s1")
	if err := c.Consume(b, "s1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Consume(b, "s1"); !errors.Is(err, dbsc.ErrChallengeUnknown) {
		t.Errorf("replayed challenge: %v", err)
	}
	d, _ := c.Issue("")
	now = now.Add(time.Minute)
	if err := c.Consume(d, ""); !errors.Is(err, dbsc.ErrChallengeExpired) {
		t.Errorf("expired challenge: %v", err)
	}
	if err := c.Consume("never issued", ""); !errors.Is(err, dbsc.ErrChallengeUnknown) {
		t.Errorf("unknown challenge: %v", err)
	}
}

// A flood of challenges nobody answers costs bounded memory: the oldest
// are forgotten.
func TestChallengesBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := dbsc.NewChallenges(dbsc.ChallengeOptions{TTL: time.Hour, Max: 100, Now: func() time.Time { return now }})
	first, _ := c.Issue("s")
	live, _ := c.Issue("s")
	for range 10_000 {
		if _, err := c.Issue("flood"); err != nil {
			t.Fatal(err)
		}
		if n := c.Len(); n > 100 {
			t.Fatalf("%d challenges held, Max is 100", n)
		}
	}
	if err := c.Consume(first, "s"); !errors.Is(err, dbsc.ErrChallengeUnknown) {
		t.Errorf("the oldest challenge survived a flood: %v", err)
	}
	_ = live
	// Issue and answer many behind one live challenge: still bounded.
	keep, _ := c.Issue("keep")
	for range 10_000 {
		x, _ := c.Issue("s")
		if err := c.Consume(x, "s"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Consume(keep, "keep"); err != nil {
		t.Errorf("a live challenge was lost while others were answered: %v", err)
	}
}

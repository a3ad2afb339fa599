package dbsc

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// The algorithms a proof may use. "none" and the HMAC algorithms are never
// accepted: a proof must show possession of a private key.
const (
	ES256 = "ES256"
	RS256 = "RS256"
)

var allowedAlgs = map[string]struct{}{ES256: {}, RS256: {}}

// RSA keys: at least 2048 bits (NIST SP 800-57's floor), at most 4096 (a
// bound on the cost an attacker can make one verification take).
const (
	minRSABits = 2048
	maxRSABits = 4096
)

// Bounds on the parts of a proof, decoded.
const (
	maxJOSEHeader = 2048
	maxPayload    = 2048
	// MaxChallengeLen bounds the "jti" and "authorization" claims.
	MaxChallengeLen = 256
)

// ErrProof is the error every failed check of a proof wraps: the caller
// answers it with a 4xx, never a 5xx, and never a cookie.
var ErrProof = errors.New("dbsc: invalid proof")

func proofErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProof}, args...)...)
}

// Key is a proof's public key: ECDSA P-256 for ES256, RSA for RS256.
type Key struct {
	alg string
	ec  *ecdsa.PublicKey
	rsa *rsa.PublicKey
}

// Alg is the algorithm the key signs with: ES256 or RS256.
func (k *Key) Alg() string { return k.alg }

// Public returns the crypto.PublicKey.
func (k *Key) Public() crypto.PublicKey {
	if k.ec != nil {
		return k.ec
	}
	return k.rsa
}

// Equal reports whether k and o are the same key.
func (k *Key) Equal(o *Key) bool {
	if k == nil || o == nil {
		return k == o
	}
	if k.ec != nil {
		return o.ec != nil && k.ec.Equal(o.ec)
	}
	return o.rsa != nil && k.rsa.Equal(o.rsa)
}

// NewKey wraps an *ecdsa.PublicKey on P-256 or an *rsa.PublicKey of 2048
// to 4096 bits.
func NewKey(pub crypto.PublicKey) (*Key, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return nil, errors.New("dbsc: ECDSA keys must be on P-256")
		}
		return &Key{alg: ES256, ec: p}, nil
	case *rsa.PublicKey:
		if b := p.N.BitLen(); b < minRSABits || b > maxRSABits {
			return nil, fmt.Errorf("dbsc: RSA key of %d bits (want %d to %d)", b, minRSABits, maxRSABits)
		}
		return &Key{alg: RS256, rsa: p}, nil
	}
	return nil, fmt.Errorf("dbsc: unsupported key type %T", pub)
}

// jwk is the JSON Web Key (RFC 7517) members this package reads.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	// Private members: a key that carries them is refused.
	D string `json:"d,omitempty"`
	P string `json:"p,omitempty"`
	Q string `json:"q,omitempty"`
}

var b64 = base64.RawURLEncoding.Strict()

// ParseJWK reads a public key in JWK form, as [Key.JWK] writes it and as a
// registration proof carries it.
func ParseJWK(data []byte) (*Key, error) {
	if len(data) > maxJOSEHeader {
		return nil, errors.New("dbsc: JWK too large")
	}
	var j jwk
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("dbsc: JWK: %v", err)
	}
	return j.key()
}

func (j *jwk) key() (*Key, error) {
	if j.D != "" || j.P != "" || j.Q != "" {
		return nil, errors.New("dbsc: JWK carries private key material")
	}
	switch j.Kty {
	case "EC":
		if j.Crv != "P-256" {
			return nil, fmt.Errorf("dbsc: EC key on curve %s (want P-256)", quoteForError(j.Crv))
		}
		x, err1 := b64.DecodeString(j.X)
		y, err2 := b64.DecodeString(j.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("dbsc: EC key coordinates are not 32-byte base64url values")
		}
		// ParseUncompressedPublicKey checks that the point is on the curve.
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("dbsc: EC key: %v", err)
		}
		return &Key{alg: ES256, ec: pub}, nil
	case "RSA":
		n, err1 := b64.DecodeString(j.N)
		e, err2 := b64.DecodeString(j.E)
		if err1 != nil || err2 != nil || len(n) == 0 || n[0] == 0 || len(e) == 0 || len(e) > 4 || e[0] == 0 {
			return nil, errors.New("dbsc: RSA key members are not minimal base64url integers")
		}
		var ev int64
		for _, c := range e {
			ev = ev<<8 | int64(c)
		}
		if ev < 3 || ev%2 == 0 || ev > 1<<31-1 {
			return nil, fmt.Errorf("dbsc: RSA public exponent %d", ev)
		}
		return NewKey(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev)})
	}
	return nil, fmt.Errorf("dbsc: key type %s (want EC or RSA)", quoteForError(j.Kty))
}

// JWK returns the key as a JSON Web Key with only its public members, in
// the member order of the RFC 7638 thumbprint.
func (k *Key) JWK() []byte {
	if k.ec != nil {
		b, _ := k.ec.Bytes() // 0x04 || X || Y
		return fmt.Appendf(nil, `{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`,
			b64.EncodeToString(b[1:33]), b64.EncodeToString(b[33:65]))
	}
	e := big.NewInt(int64(k.rsa.E)).Bytes()
	return fmt.Appendf(nil, `{"e":"%s","kty":"RSA","n":"%s"}`, b64.EncodeToString(e), b64.EncodeToString(k.rsa.N.Bytes()))
}

// Thumbprint is the key's RFC 7638 JWK thumbprint (SHA-256, base64url): a
// name for the key that logs may carry.
func (k *Key) Thumbprint() string {
	sum := sha256.Sum256(k.JWK())
	return b64.EncodeToString(sum[:])
}

// Proof is what a verified DBSC proof says.
type Proof struct {
	// Key is the key the proof was verified with: for a registration, the
	// key it carried; for a refresh, the session's registered key.
	Key *Key
	// Challenge is the "jti" claim: the challenge the browser signed. The
	// caller must accept it only once ([Challenges.Consume]).
	Challenge string
	// Authorization is the "authorization" claim, if any.
	Authorization string
}

type joseHeader struct {
	Alg  string          `json:"alg"`
	Typ  string          `json:"typ"`
	JWK  json.RawMessage `json:"jwk"`
	Crit json.RawMessage `json:"crit"`
}

type claims struct {
	JTI           *string `json:"jti"`
	Authorization *string `json:"authorization"`
}

// VerifyRegistration checks a registration proof: it must carry its public
// key in the JOSE header's "jwk", be signed by that key with an allowed
// algorithm matching the key's type, and name a challenge in "jti".
func VerifyRegistration(jws string) (*Proof, error) {
	h, pl, signed, sig, err := split(jws)
	if err != nil {
		return nil, err
	}
	if len(h.JWK) == 0 {
		return nil, proofErr(`registration proof without "jwk"`)
	}
	var j jwk
	if err := json.Unmarshal(h.JWK, &j); err != nil {
		return nil, proofErr(`"jwk" is not a JSON Web Key`)
	}
	key, err := j.key()
	if err != nil {
		return nil, proofErr("%v", err)
	}
	return verify(h, pl, signed, sig, key)
}

// VerifyRefresh checks a refresh proof against the session's registered
// key. A proof that carries a "jwk" (the draft says it must not) is
// accepted only if that is the registered key.
func VerifyRefresh(jws string, key *Key) (*Proof, error) {
	if key == nil {
		return nil, proofErr("no registered key")
	}
	h, pl, signed, sig, err := split(jws)
	if err != nil {
		return nil, err
	}
	if len(h.JWK) > 0 {
		var j jwk
		if json.Unmarshal(h.JWK, &j) != nil {
			return nil, proofErr(`"jwk" is not a JSON Web Key`)
		}
		other, err := j.key()
		if err != nil || !other.Equal(key) {
			return nil, proofErr(`refresh proof carries a "jwk" that is not the session's key`)
		}
	}
	return verify(h, pl, signed, sig, key)
}

func split(jws string) (h joseHeader, pl claims, signed string, sig []byte, err error) {
	if len(jws) > MaxHeaderLen {
		return h, pl, "", nil, proofErr("proof of %d bytes", len(jws))
	}
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return h, pl, "", nil, proofErr("not a compact JWS (%d parts)", len(parts))
	}
	hb, err1 := b64.DecodeString(parts[0])
	pb, err2 := b64.DecodeString(parts[1])
	sig, err3 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return h, pl, "", nil, proofErr("a part is not unpadded base64url")
	}
	if len(hb) > maxJOSEHeader || len(pb) > maxPayload {
		return h, pl, "", nil, proofErr("header or payload too large")
	}
	if err := strictObject(hb, &h); err != nil {
		return h, pl, "", nil, proofErr("JOSE header: %v", err)
	}
	if err := strictObject(pb, &pl); err != nil {
		return h, pl, "", nil, proofErr("payload: %v", err)
	}
	return h, pl, parts[0] + "." + parts[1], sig, nil
}

// strictObject decodes a JSON object, refusing trailing data and duplicate
// members of the names this package reads (a duplicate "alg" could mean one
// thing to a verifier and another to a log reader).
func strictObject(data []byte, v any) error {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	if raw == nil {
		return errors.New("not an object")
	}
	if err := noDuplicateMembers(data); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func noDuplicateMembers(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := t.(string)
		if seen[k] {
			return fmt.Errorf("duplicate member %s", quoteForError(k))
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

func verify(h joseHeader, pl claims, signed string, sig []byte, key *Key) (*Proof, error) {
	if _, ok := allowedAlgs[h.Alg]; !ok {
		return nil, proofErr("algorithm %s is not allowed", quoteForError(h.Alg))
	}
	if !strings.EqualFold(h.Typ, "dbsc+jwt") {
		return nil, proofErr(`"typ" is %s, want "dbsc+jwt"`, quoteForError(h.Typ))
	}
	if len(h.Crit) > 0 {
		return nil, proofErr(`"crit" names extensions this server does not understand`)
	}
	if h.Alg != key.alg {
		return nil, proofErr("algorithm %s does not match the %s key", h.Alg, key.alg)
	}
	if pl.JTI == nil || *pl.JTI == "" || len(*pl.JTI) > MaxChallengeLen {
		return nil, proofErr(`"jti" missing, empty or too long`)
	}
	if pl.Authorization != nil && len(*pl.Authorization) > MaxChallengeLen {
		return nil, proofErr(`"authorization" too long`)
	}
	digest := sha256.Sum256([]byte(signed))
	switch key.alg {
	case ES256:
		if len(sig) != 64 {
			return nil, proofErr("ES256 signature of %d bytes (want 64)", len(sig))
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(key.ec, digest[:], r, s) {
			return nil, proofErr("signature does not verify")
		}
	case RS256:
		if len(sig) != key.rsa.Size() {
			return nil, proofErr("RS256 signature of %d bytes (want %d)", len(sig), key.rsa.Size())
		}
		if rsa.VerifyPKCS1v15(key.rsa, crypto.SHA256, digest[:], sig) != nil {
			return nil, proofErr("signature does not verify")
		}
	}
	p := &Proof{Key: key, Challenge: *pl.JTI}
	if pl.Authorization != nil {
		p.Authorization = *pl.Authorization
	}
	return p, nil
}

// Package dbsctest is a DBSC client written in Go, for tests: it holds a
// private key as a browser would and signs registration and refresh
// proofs. It also makes proofs a browser would never send, to test that a
// server refuses them.
package dbsctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"

	"github.com/cordon-sec/cordon/dbsc"
)

// Client holds one device's key.
type Client struct {
	alg string
	ec  *ecdsa.PrivateKey
	rsa *rsa.PrivateKey
}

// NewES256 returns a client with a new P-256 key.
func NewES256() *Client {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return &Client{alg: dbsc.ES256, ec: k}
}

// NewRS256 returns a client with a new RSA key of bits bits.
func NewRS256(bits int) *Client {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return &Client{alg: dbsc.RS256, rsa: k}
}

// Alg is the client's algorithm.
func (c *Client) Alg() string { return c.alg }

// Public is the client's public key.
func (c *Client) Public() crypto.PublicKey {
	if c.ec != nil {
		return &c.ec.PublicKey
	}
	return &c.rsa.PublicKey
}

// Key is the client's public key as the server sees it.
func (c *Client) Key() *dbsc.Key {
	k, err := dbsc.NewKey(c.Public())
	if err != nil {
		panic(err)
	}
	return k
}

// JWK is the client's public key as a JSON Web Key, written without the
// checks the server makes (so a test can offer a key the server refuses).
func (c *Client) JWK() json.RawMessage {
	enc := base64.RawURLEncoding
	if c.ec != nil {
		b, _ := c.ec.PublicKey.Bytes()
		return json.RawMessage(`{"kty":"EC","crv":"P-256","x":"` + enc.EncodeToString(b[1:33]) + `","y":"` + enc.EncodeToString(b[33:]) + `"}`)
	}
	e := []byte{byte(c.rsa.E >> 16), byte(c.rsa.E >> 8), byte(c.rsa.E)}
	for len(e) > 1 && e[0] == 0 {
		e = e[1:]
	}
	return json.RawMessage(`{"kty":"RSA","n":"` + enc.EncodeToString(c.rsa.N.Bytes()) + `","e":"` + enc.EncodeToString(e) + `"}`)
}

// RegistrationProof signs a registration proof for challenge, carrying the
// public key in the JOSE header as the draft says.
func (c *Client) RegistrationProof(challenge, authorization string) string {
	h := map[string]any{"alg": c.alg, "typ": "dbsc+jwt", "jwk": c.JWK()}
	p := map[string]any{"jti": challenge}
	if authorization != "" {
		p["authorization"] = authorization
	}
	return c.Sign(h, p)
}

// RefreshProof signs a refresh proof for challenge (no "jwk").
func (c *Client) RefreshProof(challenge string) string {
	return c.Sign(map[string]any{"alg": c.alg, "typ": "dbsc+jwt"}, map[string]any{"jti": challenge})
}

// Sign signs any header and payload with the client's key and its
// algorithm, whatever the header's "alg" says: tests use it to forge
// proofs.
func (c *Client) Sign(header, payload any) string {
	hb, _ := json.Marshal(header)
	pb, _ := json.Marshal(payload)
	return c.SignRaw(hb, pb)
}

// SignRaw signs raw header and payload bytes.
func (c *Client) SignRaw(header, payload []byte) string {
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	d := sha256.Sum256([]byte(signed))
	var sig []byte
	if c.ec != nil {
		r, s, err := ecdsa.Sign(rand.Reader, c.ec, d[:])
		if err != nil {
			panic(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	} else {
		var err error
		sig, err = rsa.SignPKCS1v15(rand.Reader, c.rsa, crypto.SHA256, d[:])
		if err != nil {
			panic(err)
		}
	}
	return signed + "." + enc.EncodeToString(sig)
}

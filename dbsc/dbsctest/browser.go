package dbsctest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/cordon-sec/cordon/dbsc"
)

// Registration is what a Secure-Session-Registration field offers.
type Registration struct {
	Algs          []string
	Path          string
	Challenge     string
	Authorization string
}

// ParseRegistration reads the first entry of a Secure-Session-Registration
// field as a browser would (enough of RFC 9651 for what servers send).
func ParseRegistration(v string) (Registration, error) {
	var r Registration
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, "(") {
		return r, errors.New("registration: no inner list")
	}
	end := strings.IndexByte(v, ')')
	if end < 0 {
		return r, errors.New("registration: unterminated inner list")
	}
	r.Algs = strings.Fields(v[1:end])
	params, err := parseParams(v[end+1:])
	if err != nil {
		return r, err
	}
	r.Path, r.Challenge, r.Authorization = params["path"], params["challenge"], params["authorization"]
	if r.Path == "" || r.Challenge == "" {
		return r, errors.New("registration: no path or challenge")
	}
	return r, nil
}

// ParseChallenge reads a Secure-Session-Challenge field: the challenge and
// its session id.
func ParseChallenge(v string) (challenge, id string, err error) {
	v = strings.TrimSpace(v)
	s, rest, err := sfString(v)
	if err != nil {
		return "", "", err
	}
	params, err := parseParams(rest)
	if err != nil {
		return "", "", err
	}
	return s, params["id"], nil
}

func parseParams(v string) (map[string]string, error) {
	out := map[string]string{}
	for v = strings.TrimSpace(v); v != ""; v = strings.TrimSpace(v) {
		if v[0] == ',' {
			break // the next list member
		}
		if v[0] != ';' {
			return nil, fmt.Errorf("params: unexpected %q", v)
		}
		k, rest, ok := strings.Cut(v[1:], "=")
		if !ok {
			return nil, errors.New("params: no value")
		}
		s, rest2, err := sfString(rest)
		if err != nil {
			return nil, err
		}
		out[strings.TrimSpace(k)], v = s, rest2
	}
	return out, nil
}

func sfString(v string) (string, string, error) {
	if v == "" || v[0] != '"' {
		return "", "", errors.New("not a string")
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			i++
			if i < len(v) {
				b.WriteByte(v[i])
			}
		case '"':
			return b.String(), v[i+1:], nil
		default:
			b.WriteByte(c)
		}
	}
	return "", "", errors.New("unterminated string")
}

// Browser is a protocol-level DBSC browser: an HTTP client with a cookie
// jar and a device key. It registers when a response offers it and
// refreshes on request, sending the proof raw (as Chromium does) unless
// Quote is set (as the draft writes it).
type Browser struct {
	HTTP  *http.Client
	Key   *Client
	Quote bool
	// After registration: the session id and refresh URL.
	ID         string
	RefreshURL *url.URL
}

func (b *Browser) header(v string) string {
	if b.Quote {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
	}
	return v
}

// Register answers resp's registration offer. It returns the registration
// response's status.
func (b *Browser) Register(resp *http.Response) (int, error) {
	reg, err := ParseRegistration(resp.Header.Get(dbsc.HeaderRegistration))
	if err != nil {
		return 0, err
	}
	u, err := resp.Request.URL.Parse(reg.Path)
	if err != nil {
		return 0, err
	}
	req, _ := http.NewRequest(http.MethodPost, u.String(), nil)
	req.Header.Set(dbsc.HeaderResponse, b.header(b.Key.RegistrationProof(reg.Challenge, reg.Authorization)))
	r, err := b.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		io.Copy(io.Discard, r.Body)
		return r.StatusCode, nil
	}
	var ins dbsc.Instructions
	if err := json.NewDecoder(r.Body).Decode(&ins); err != nil {
		return r.StatusCode, err
	}
	if ins.SessionID == "" || len(ins.Creds) == 0 {
		return r.StatusCode, errors.New("registration: incomplete instructions")
	}
	b.ID = ins.SessionID
	b.RefreshURL, err = u.Parse(ins.RefreshURL)
	return r.StatusCode, err
}

// Refresh runs a refresh: the first request without a proof, and on 403
// with a challenge, a second with a proof signed by the browser's key. It
// returns the final status and the response's Set-Cookie lines.
func (b *Browser) Refresh() (int, []string, error) {
	if b.RefreshURL == nil {
		return 0, nil, errors.New("refresh: not registered")
	}
	status, ch, cookies, err := b.refreshOnce("")
	if err != nil || status != http.StatusForbidden || ch == "" {
		return status, cookies, err
	}
	status, _, cookies, err = b.refreshOnce(b.Key.RefreshProof(ch))
	return status, cookies, err
}

// RefreshWith sends one refresh request carrying proof ("" for none) and
// returns its status, the challenge of a 403, and its Set-Cookie lines.
func (b *Browser) RefreshWith(proof string) (int, string, []string, error) {
	return b.refreshOnce(proof)
}

func (b *Browser) refreshOnce(proof string) (int, string, []string, error) {
	req, _ := http.NewRequest(http.MethodPost, b.RefreshURL.String(), nil)
	req.Header.Set(dbsc.HeaderSessionID, b.header(b.ID))
	if proof != "" {
		req.Header.Set(dbsc.HeaderResponse, b.header(proof))
	}
	r, err := b.HTTP.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer r.Body.Close()
	io.Copy(io.Discard, r.Body)
	ch := ""
	if v := r.Header.Get(dbsc.HeaderChallenge); v != "" {
		c, id, err := ParseChallenge(v)
		if err != nil {
			return r.StatusCode, "", nil, err
		}
		if id != b.ID {
			return r.StatusCode, "", nil, fmt.Errorf("challenge for session %q, want %q", id, b.ID)
		}
		ch = c
	}
	return r.StatusCode, ch, r.Header.Values("Set-Cookie"), nil
}

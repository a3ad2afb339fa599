package dbsc

// Instructions is the session configuration JSON that the registration
// endpoint answers with (and a refresh may): which session, where to
// refresh it, what it covers and which cookie it keeps alive.
type Instructions struct {
	SessionID  string       `json:"session_identifier"`
	RefreshURL string       `json:"refresh_url,omitempty"`
	Continue   *bool        `json:"continue,omitempty"`
	Scope      Scope        `json:"scope"`
	Creds      []Credential `json:"credentials"`
}

// Scope is the part of the site a session covers.
type Scope struct {
	Origin      string `json:"origin,omitempty"`
	IncludeSite bool   `json:"include_site"`
}

// Credential names a cookie the session keeps alive. Attributes are written
// as in a Set-Cookie line ("Path=/; Secure; HttpOnly; SameSite=Lax").
type Credential struct {
	Type       string `json:"type"` // "cookie"
	Name       string `json:"name"`
	Attributes string `json:"attributes"`
}

// End returns the instructions that end the session named id.
func End(id string) Instructions {
	f := false
	return Instructions{SessionID: id, Continue: &f}
}

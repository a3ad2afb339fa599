// Package dbsc is the server side of Device Bound Session Credentials, the
// W3C WebAppSec draft in which a browser binds a session to a private key it
// keeps (in a TPM where there is one) and proves possession of that key to
// refresh a short-lived cookie.
//
// This package holds the protocol's wire formats and checks, with nothing
// of HTTP routing or storage in it:
//
//   - [RegistrationHeader] and [ChallengeHeader] write the response header
//     fields Secure-Session-Registration and Secure-Session-Challenge as
//     RFC 9651 structured fields.
//   - [HeaderString] reads the request header fields Secure-Session-Response
//     and Sec-Secure-Session-Id. The draft writes both as structured-field
//     strings; Chromium sends them raw. Both forms are accepted.
//   - [VerifyRegistration] and [VerifyRefresh] check a DBSC proof (a JWS in
//     compact form) against an allow-list of algorithms (ES256 and RS256
//     only: never "none", never an HMAC), its "typ", the key's type and
//     size, the signature, and the size of every part. They do not check
//     "jti" against a challenge: [Challenges] does that, once.
//   - [Challenges] issues challenges and accepts each one once, within its
//     lifetime, for the session it was issued to. Its memory is bounded.
//   - [Instructions] is the session configuration JSON the registration and
//     refresh endpoints answer with.
//
// Proofs need not carry "aud" or "iat" (Chromium sends neither); when they
// do, this package does not rely on them: freshness comes from the
// single-use, short-lived challenge in "jti".
package dbsc

package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/recallq/recallq/internal/loginguard"
)

// realm is the Basic auth realm a browser shows in its login prompt.
const realm = "recallq dashboard"

// basicAuth returns h behind HTTP Basic authentication: a request whose
// credentials are missing or wrong gets 401 with a WWW-Authenticate
// challenge and never reaches h.
//
// Both fields are always compared, each in constant time over a SHA-256
// digest, so neither the response time nor its length says which field was
// wrong or how much of it matched. An address that failed too often gets
// 429 from guard before its credentials are looked at; each wrong user or
// password is logged and counted by guard, without what was typed.
func basicAuth(user, password string, guard *loginguard.Guard, h http.Handler) http.Handler {
	wantUser := sha256.Sum256([]byte(user))
	wantPass := sha256.Sum256([]byte(password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait, ok := guard.Allow(r); !ok {
			loginguard.Refuse(w, wait)
			return
		}
		u, p, ok := r.BasicAuth()
		gotUser := sha256.Sum256([]byte(u))
		gotPass := sha256.Sum256([]byte(p))
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || userOK&passOK != 1 {
			// Only a wrong guess counts: a browser asks without
			// credentials first (the page, its manifest, each API call)
			// and sends them after the challenge.
			if ok {
				guard.Failed(r, "wrong user or password")
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`", charset="UTF-8"`)
			http.Error(w, "401 Unauthorized: the recallq dashboard needs a user name and password", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

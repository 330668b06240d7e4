package dashboard

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
)

// realm is the Basic auth realm a browser shows in its login prompt.
const realm = "recallq dashboard"

// basicAuth returns h behind HTTP Basic authentication: a request whose
// credentials are missing or wrong gets 401 with a WWW-Authenticate
// challenge and never reaches h.
//
// Both fields are always compared, each in constant time over a SHA-256
// digest, so neither the response time nor its length says which field was
// wrong or how much of it matched.
func basicAuth(user, password string, h http.Handler) http.Handler {
	wantUser := sha256.Sum256([]byte(user))
	wantPass := sha256.Sum256([]byte(password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		gotUser := sha256.Sum256([]byte(u))
		gotPass := sha256.Sum256([]byte(p))
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || userOK&passOK != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`", charset="UTF-8"`)
			http.Error(w, "401 Unauthorized: the recallq dashboard needs a user name and password", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

package intake

import (
	"encoding/json"
	"net/http"
)

// writeJSON writes v as the JSON body of a status answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // a failed write means the client left
}

// writeError writes an ErrorResponse.
func writeError(w http.ResponseWriter, status int, msg string, problems []Problem) {
	writeJSON(w, status, ErrorResponse{Error: msg, Invalid: problems})
}

package intake

import (
	_ "embed"
	"net/http"
)

// Spec is the OpenAPI description of the API, served at /openapi.yaml.
//
//go:embed openapi.yaml
var Spec []byte

func serveSpec(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(Spec)
}

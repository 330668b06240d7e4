package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/recallq/recallq/internal/redistest"
)

// loadSpec parses and validates openapi.yaml, examples included.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(Spec)
	if err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI description: %v", err)
	}
	return doc
}

// specOps lists the spec's operations as "METHOD /path", sorted.
func specOps(doc *openapi3.T) []string {
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	sort.Strings(ops)
	return ops
}

// specRoute is the route kin-openapi validates a request of op against.
func specRoute(t *testing.T, doc *openapi3.T, op string) *routers.Route {
	t.Helper()
	method, path, _ := strings.Cut(op, " ")
	item := doc.Paths.Value(path)
	if item == nil || item.GetOperation(method) == nil {
		t.Fatalf("the spec has no operation %s", op)
	}
	return &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: item.GetOperation(method)}
}

func TestOpenAPIRoutesMatchHandler(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	e := newEnv(t)
	var handled []string
	for _, rt := range e.s.routes() {
		handled = append(handled, rt.method+" "+rt.pattern)
	}
	sort.Strings(handled)
	if spec := specOps(doc); !slices.Equal(spec, handled) {
		t.Fatalf("the spec describes %q\nthe handler routes  %q", spec, handled)
	}
	// And the mux really routes each one to that pattern.
	for _, op := range specOps(doc) {
		method, path, _ := strings.Cut(op, " ")
		req := httptest.NewRequest(method, strings.ReplaceAll(path, "{id}", "recall_0"), nil)
		if _, pattern := e.s.mux.Handler(req); pattern != op {
			t.Errorf("%s is routed to %q", op, pattern)
		}
	}
}

// specTypes maps each schema of the spec to the Go type the handler reads
// or writes for it.
var specTypes = map[string]any{
	"RecallRequest":      RecallRequest{},
	"GroupRecallRequest": GroupRecallRequest{},
	"BatchRequest":       BatchRequest{},
	"Queued":             Queued{},
	"BatchResponse":      BatchResponse{},
	"Task":               Task{},
	"ErrorResponse":      ErrorResponse{},
	"Problem":            Problem{},
	"Health":             Health{},
}

func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	if got, want := slices.Sorted(maps.Keys(doc.Components.Schemas)), slices.Sorted(maps.Keys(specTypes)); !slices.Equal(got, want) {
		t.Fatalf("the spec's schemas are %q; the Go types cover %q", got, want)
	}
	for name, v := range specTypes {
		t.Run(name, func(t *testing.T) {
			schema := doc.Components.Schemas[name].Value
			if schema.AdditionalProperties.Has == nil || *schema.AdditionalProperties.Has {
				t.Errorf("%s does not say additionalProperties: false", name)
			}
			props, required := jsonFields(reflect.TypeOf(v))
			if got := slices.Sorted(maps.Keys(schema.Properties)); !slices.Equal(got, slices.Sorted(maps.Keys(props))) {
				t.Errorf("properties: spec %q, Go %q", got, slices.Sorted(maps.Keys(props)))
			}
			if got := slices.Sorted(slices.Values(schema.Required)); !slices.Equal(got, required) {
				t.Errorf("required: spec %q, Go (fields without omitempty/omitzero) %q", got, required)
			}
			for prop, typ := range props {
				if s := schema.Properties[prop]; s != nil && !s.Value.Type.Is(typ) {
					t.Errorf("%s: spec type %v, Go gives %s", prop, s.Value.Type, typ)
				}
			}
		})
	}
}

// jsonFields returns a struct's JSON names with their OpenAPI types, and the
// names always present in its JSON (no omitempty or omitzero), sorted.
func jsonFields(typ reflect.Type) (map[string]string, []string) {
	props := map[string]string{}
	var required []string
	for f := range typ.Fields() {
		tag, ok := f.Tag.Lookup("json")
		if !ok || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		props[name] = openAPIType(f.Type)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			required = append(required, name)
		}
	}
	sort.Strings(required)
	return props, required
}

func openAPIType(t reflect.Type) string {
	if t == reflect.TypeFor[time.Time]() {
		return "string"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return openAPIType(t.Elem())
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int64, reflect.Uint64:
		return "integer"
	case reflect.Slice:
		return "array"
	case reflect.Struct:
		return "object"
	}
	return t.Kind().String()
}

// TestOpenAPIExamplesAreAccepted sends every request example of the spec
// to the handler: each must be valid by the spec and queued (202), with an
// answer valid by the spec. The path parameters' examples then look up
// what was queued.
func TestOpenAPIExamplesAreAccepted(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	e := newEnv(t)
	var sent int
	for _, op := range specOps(doc) {
		rt := specRoute(t, doc, op)
		if rt.Operation.RequestBody == nil {
			continue
		}
		media := rt.Operation.RequestBody.Value.Content.Get("application/json")
		for _, name := range slices.Sorted(maps.Keys(media.Examples)) {
			body, err := json.Marshal(media.Examples[name].Value.Value)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(rt.Method, rt.Path, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+opsToken.Secret)
			rec := checkAgainstSpec(t, doc, op, e.s, req, nil)
			if rec.Code != http.StatusAccepted {
				t.Errorf("%s example %q: %d, want 202 (%s)", op, name, rec.Code, rec.Body)
			}
			sent++
		}
	}
	if sent < 5 {
		t.Fatalf("the spec has %d request examples; want one recall, one without reason, a batch, a group and a topic", sent)
	}
	// The id parameter's example is the task of the "one" example.
	param := specRoute(t, doc, "GET /v1/recalls/{id}").Operation.Parameters.GetByInAndName("path", "id")
	id := fmt.Sprint(param.Example)
	req := httptest.NewRequest(http.MethodGet, "/v1/recalls/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+opsToken.Secret)
	if rec := checkAgainstSpec(t, doc, "GET /v1/recalls/{id}", e.s, req, map[string]string{"id": id}); rec.Code != http.StatusOK {
		t.Fatalf("GET of the example id: %d (%s)", rec.Code, rec.Body)
	}
}

// TestOpenAPIResponsesMatchHandler produces every answer the spec documents
// for every operation and checks each against the spec; an answer the spec
// does not document fails too.
func TestOpenAPIResponsesMatchHandler(t *testing.T) {
	t.Parallel()
	doc := loadSpec(t)
	e := newEnv(t)
	clock := &fakeClock{now: time.Now()}
	limited := newEnv(t, func(c *Config) { c.Rate, c.Burst, c.Now = 0.001, 1, clock.Now })
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	down, err := New(Config{RedisURL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), SDKAppID: testApp,
		Tokens: []Token{opsToken}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()

	two := twoAppEnv(t) // billing may use app A only

	queued := decodeAs[Queued](t, e.post(t, recallJSON("a", "b", "1_1_1"))).TaskID
	good := recallJSON("a", "b", "1_1_2")
	groupQueued := decodeAs[BatchResponse](t, e.do(t, "POST", "/v1/group-recalls", opsToken.Secret, groupJSON("g", "t", 1))).Recalls[0].TaskID
	group := groupJSON("g", "", 1, 2, 3)
	ops := opsToken.Secret
	for _, tc := range []struct {
		op     string
		h      http.Handler
		method string
		path   string
		token  string
		body   string
		status int
	}{
		{"POST /v1/recalls", e.s, "POST", "/v1/recalls", ops, good, 202},
		{"POST /v1/recalls", e.s, "POST", "/v1/recalls", ops, batchJSON(good, recallJSON("a", "c", "1")), 202},
		{"POST /v1/recalls", e.s, "POST", "/v1/recalls", ops, `{"MsgKey":1}`, 400},
		{"POST /v1/recalls", e.s, "POST", "/v1/recalls", "", good, 401},
		{"POST /v1/recalls", e.s, "POST", "/v1/recalls", "nope", good, 401},
		{"POST /v1/recalls", e.s, "POST", "/v1/recalls", ops, `{"reason":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`, 413},
		{"POST /v1/recalls", e.s, "POST", "/v1/recalls", ops, batchJSON(good, recallJSON("", "b", "k")), 422},
		{"POST /v1/recalls", limited.s, "POST", "/v1/recalls", ops, good, 202},
		{"POST /v1/recalls", limited.s, "POST", "/v1/recalls", ops, good, 429},
		{"POST /v1/recalls", down, "POST", "/v1/recalls", ops, good, 503},
		{"POST /v1/recalls", two.s, "POST", "/v1/recalls?sdkappid=1400000001", ops, good, 202},
		{"POST /v1/recalls", two.s, "POST", "/v1/recalls?sdkappid=1400000001", billingToken.Secret, good, 403},
		{"POST /v1/recalls", two.s, "POST", "/v1/recalls", ops, good, 422},
		{"POST /v1/recalls", two.s, "POST", "/v1/recalls?sdkappid=x", ops, good, 400},
		{"POST /v1/group-recalls", e.s, "POST", "/v1/group-recalls", ops, group, 202},
		{"POST /v1/group-recalls", e.s, "POST", "/v1/group-recalls", ops, `{"GroupId":"g","MsgSeq":["1"]}`, 400},
		{"POST /v1/group-recalls", e.s, "POST", "/v1/group-recalls", "", group, 401},
		{"POST /v1/group-recalls", e.s, "POST", "/v1/group-recalls", ops, `{"reason":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`, 413},
		{"POST /v1/group-recalls", e.s, "POST", "/v1/group-recalls", ops, `{"GroupId":"g","MsgSeq":[1,0]}`, 422},
		{"POST /v1/group-recalls", limited.s, "POST", "/v1/group-recalls", ops, group, 429}, // after the POSTs above
		{"POST /v1/group-recalls", down, "POST", "/v1/group-recalls", ops, group, 503},
		{"POST /v1/group-recalls", two.s, "POST", "/v1/group-recalls?sdkappid=1400000001", ops, group, 202},
		{"POST /v1/group-recalls", two.s, "POST", "/v1/group-recalls?sdkappid=1400000001", billingToken.Secret, group, 403},
		{"POST /v1/group-recalls", two.s, "POST", "/v1/group-recalls?sdkappid=1400000009", ops, group, 422},
		{"GET /v1/recalls/{id}", e.s, "GET", "/v1/recalls/" + queued, ops, "", 200},
		{"GET /v1/recalls/{id}", e.s, "GET", "/v1/recalls/" + groupQueued, ops, "", 200},
		{"GET /v1/recalls/{id}", e.s, "GET", "/v1/recalls/" + queued, "", "", 401},
		{"GET /v1/recalls/{id}", e.s, "GET", "/v1/recalls/" + taskID("x", "y", "z"), ops, "", 404},
		{"GET /v1/recalls/{id}", limited.s, "GET", "/v1/recalls/" + queued, ops, "", 429},
		{"GET /v1/recalls/{id}", down, "GET", "/v1/recalls/" + queued, ops, "", 503},
		{"GET /healthz", e.s, "GET", "/healthz", "", "", 200},
		{"GET /readyz", e.s, "GET", "/readyz", "", "", 200},
		{"GET /readyz", down, "GET", "/readyz", "", "", 503},
		{"GET /openapi.yaml", e.s, "GET", "/openapi.yaml", "", "", 200},
		{"GET /metrics", e.s, "GET", "/metrics", "", "", 200},
	} {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		req := httptest.NewRequest(tc.method, tc.path, body)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		var params map[string]string
		if id, ok := strings.CutPrefix(tc.path, "/v1/recalls/"); ok {
			params = map[string]string{"id": id}
		}
		rec := checkAgainstSpec(t, doc, tc.op, tc.h, req, params)
		if rec.Code != tc.status {
			t.Errorf("%s %s: %d, want %d (%.300s)", tc.method, tc.path, rec.Code, tc.status, rec.Body)
		}
		if tc.op == "GET /openapi.yaml" && !bytes.Equal(rec.Body.Bytes(), Spec) {
			t.Errorf("/openapi.yaml does not serve the embedded spec")
		}
		delete(documented(doc, tc.op), fmt.Sprint(rec.Code))
	}
	for _, op := range specOps(doc) {
		if rest := documented(doc, op); len(rest) > 0 {
			t.Errorf("%s documents %q, which no case produced", op, slices.Sorted(maps.Keys(rest)))
		}
	}
}

// documentedStatuses remembers, per operation, the statuses not yet seen.
var documentedStatuses = map[string]map[string]bool{}

func documented(doc *openapi3.T, op string) map[string]bool {
	if m, ok := documentedStatuses[op]; ok {
		return m
	}
	method, path, _ := strings.Cut(op, " ")
	m := map[string]bool{}
	for code := range doc.Paths.Value(path).GetOperation(method).Responses.Map() {
		m[code] = true
	}
	documentedStatuses[op] = m
	return m
}

// checkAgainstSpec serves req and fails the test unless the answer, and
// the request when it has a body, are valid by the spec's operation op.
func checkAgainstSpec(t *testing.T, doc *openapi3.T, op string, h http.Handler, req *http.Request, params map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      specRoute(t, doc, op),
		Options:    &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code == http.StatusAccepted {
		// A request the handler took must be one the spec allows.
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
		req.Header.Set("Content-Type", "application/json")
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("%s: the handler accepted a request the spec refuses: %v", op, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	out.SetBodyBytes(rec.Body.Bytes())
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s answered %d, not as the spec says: %v\n%.300s", op, rec.Code, err, rec.Body)
	}
	return rec
}

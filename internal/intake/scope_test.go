package intake

import (
	"net/http"
	"strings"
	"testing"
)

// A token reads the tasks it queued, and no other: task IDs are derived
// from the accounts and MsgKey, so reading any ID would tell any client
// whether any message was recalled.
func TestTokenReadsOnlyWhatItQueued(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if rec := e.post(t, recallJSON("alice", "bob", "1_2_3")); rec.Code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", rec.Code, rec.Body)
	}
	id := taskID("alice", "bob", "1_2_3")
	if rec := e.do(t, http.MethodGet, "/v1/recalls/"+id, opsToken.Secret, ""); rec.Code != http.StatusOK {
		t.Fatalf("the token that queued it: %d %s, want 200", rec.Code, rec.Body)
	}
	other := e.do(t, http.MethodGet, "/v1/recalls/"+id, billingToken.Secret, "")
	missing := e.do(t, http.MethodGet, "/v1/recalls/"+taskID("carol", "dan", "9_9_9"), billingToken.Secret, "")
	if other.Code != http.StatusNotFound {
		t.Fatalf("another token: %d %s, want 404", other.Code, other.Body)
	}
	// The answer must not tell "queued by someone else" from "never queued".
	missingID := taskID("carol", "dan", "9_9_9")
	a := strings.ReplaceAll(decodeAs[ErrorResponse](t, other).Error, id, "ID")
	b := strings.ReplaceAll(decodeAs[ErrorResponse](t, missing).Error, missingID, "ID")
	if missing.Code != http.StatusNotFound || a != b {
		t.Fatalf("another's task and no task answer differently:\n%d %s\n%d %s", other.Code, a, missing.Code, b)
	}
}

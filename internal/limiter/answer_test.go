package limiter

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestAnswerClockStampsTheFirstByte: an answer whose body trails its head
// by 150 ms is stamped when the head came, not when the caller had read it
// all; without a transport to trace, Done is the moment it is called.
func TestAnswerClockStampsTheFirstByte(t *testing.T) {
	const trail = 150 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(trail)
		_, _ = io.WriteString(w, `{"ActionStatus":"OK","ErrorCode":0}`)
	}))
	t.Cleanup(srv.Close)

	ctx, clock := WithAnswerClock(context.Background(), nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	returned := time.Now()
	if got := returned.Sub(clock.Done()); got < trail*2/3 {
		t.Errorf("answer stamped %s before the body was read, want about %s: the first byte's time", got, trail)
	}

	_, bare := WithAnswerClock(context.Background(), nil)
	time.Sleep(20 * time.Millisecond)
	before := time.Now()
	if got := bare.Done(); got.Before(before) {
		t.Errorf("Done with no traced answer = %s before it was called, want now", before.Sub(got))
	}
}

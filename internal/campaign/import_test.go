package campaign

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
)

// csvOf renders rows as a campaign CSV.
func csvOf(rows []row) []byte {
	var b bytes.Buffer
	b.WriteString("From_Account,To_Account,MsgKey\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%s,%s,%s\n", r.from, r.to, r.msgKey)
	}
	return b.Bytes()
}

// crashingReader cancels the import's context once n bytes were read: the
// importer dies midway, as if killed.
type crashingReader struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *crashingReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
		return 0, context.Canceled
	}
	if len(p) > c.n {
		p = p[:c.n]
	}
	k, err := c.r.Read(p)
	c.n -= k
	return k, err
}

func importBytes(t *testing.T, e *env, name string, data []byte, batch int, r io.Reader, ctx context.Context) (ImportResult, error) {
	t.Helper()
	if r == nil {
		r = bytes.NewReader(data)
	}
	in, err := OpenInput(r, name+".csv", FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	return Import(ctx, ImportConfig{Redis: e.rdb, Name: name, SDKAppID: testApp, BatchSize: batch}, in)
}

func TestImportResumesAfterACrashQueuingEachRowOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rows := msgRows(0, 5000)
	rows = append(rows, c2c("bad", "", "1_1_1")) // one reject, to keep line numbers honest
	rows = append(rows, msgRows(5000, 6000)...)
	data := csvOf(rows)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := importBytes(t, e, "resume", data, 100, &crashingReader{r: bytes.NewReader(data), n: len(data) / 2, cancel: cancel}, ctx)
	if err == nil {
		t.Fatal("the import survived its crash")
	}
	if first.New == 0 || first.New >= 6000 {
		t.Fatalf("the first run queued %d rows; the test wants a crash midway", first.New)
	}
	if got := int64(len(backlogRows(t, e, "resume"))); got != first.New {
		t.Fatalf("backlog holds %d rows, the first run reported %d", got, first.New)
	}
	st := e.status("resume")
	if st.ImportDone || st.Queued != first.New {
		t.Fatalf("after the crash: %+v", st)
	}

	second, err := importBytes(t, e, "resume", data, 100, nil, context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !second.Resumed || second.Already != first.New || second.New != 6000-first.New || second.Total != 6000 || second.Rejected != 1 {
		t.Fatalf("second run %+v; want resumed, %d already, %d new, 6000 in all, 1 rejected", second, first.New, 6000-first.New)
	}
	got := backlogRows(t, e, "resume")
	want := append(msgRows(0, 5000), msgRows(5000, 6000)...)
	if len(got) != len(want) {
		t.Fatalf("backlog holds %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backlog row %d = %v, want %v (every row once, in order)", i, got[i], want[i])
		}
	}
	if st := e.status("resume"); !st.ImportDone || st.Queued != 6000 || st.Rejected != 1 {
		t.Fatalf("after the re-run: %+v", st)
	}

	third, err := importBytes(t, e, "resume", data, 100, nil, context.Background())
	if err != nil || third.New != 0 || third.Already != 6000 || third.Resumed {
		t.Fatalf("a run after completion: %+v, %v; want 0 new, 6000 already", third, err)
	}
}

func TestImportRefusesOtherInputUnderTheSameName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	data := csvOf(msgRows(0, 2000))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := importBytes(t, e, "changed", data, 100, &crashingReader{r: bytes.NewReader(data), n: len(data) / 2, cancel: cancel}, ctx); err == nil {
		t.Fatal("no crash")
	}
	other := csvOf(msgRows(1, 2001))
	_, err := importBytes(t, e, "changed", other, 100, nil, context.Background())
	if !errors.Is(err, ErrInputChanged) {
		t.Fatalf("err = %v, want ErrInputChanged", err)
	}
}

func TestImportIntoACancelledCampaignIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	data := csvOf(msgRows(0, 10))
	if _, err := importBytes(t, e, "gone", data, 100, nil, context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mgr.Cancel(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := importBytes(t, e, "gone", data, 100, nil, context.Background()); !errors.Is(err, ErrState) {
		t.Fatalf("err = %v, want ErrState", err)
	}
}

func TestBadNamesAreRefused(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"", "a b", "{x}", "a:b", "-x", string(bytes.Repeat([]byte("a"), MaxNameLen+1))} {
		if err := ValidateName(n); !errors.Is(err, ErrBadName) {
			t.Errorf("ValidateName(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"spam-wave_2024.11", "A"} {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v", n, err)
		}
	}
}

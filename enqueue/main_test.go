package enqueue_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/recallq/recallq/internal/redistest"
)

// redisURL is a real redis-server started for this package's tests.
var redisURL string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "enqueue-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s, err := redistest.Launch(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	redisURL = s.URL
	code := m.Run()
	s.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

package redisconn_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/internal/redistest"
)

// On a three-master Redis Cluster: asynq queues and inspects, the limiter
// grants and pauses (every key of a bucket in one slot, so no CROSSSLOT),
// and the real worker takes every task to completed.
func TestClusterRunsQueuesWorkerAndLimiter(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, redistest.ClusterConfig{Password: "cluster-pw-8Vb"})
	conn, err := redisconn.Parse(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	if conn.Kind() != redisconn.Cluster {
		t.Fatalf("Kind = %v, want cluster", conn.Kind())
	}
	if _, ok := conn.Client().(*redis.ClusterClient); !ok {
		t.Fatalf("Client() is %T, want a cluster client", conn.Client())
	}
	checkQueuesAndLimiter(t, conn)

	const n = 200
	ids := enqueueRecalls(t, conn, n)
	w := startWorker(t, conn, 8, 2*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	waitAllCompleted(ctx, t, conn, n+1) // and the task of checkQueuesAndLimiter
	w.stop()
	distinct, calls := w.done.counts()
	for id := range ids {
		if !w.done.has(id) {
			t.Errorf("task %s completed without a recall call", id)
		}
	}
	t.Logf("cluster: %d tasks recalled by %d calls; limiter %+v", distinct, calls, w.lim.Stats())
}

// rediss-cluster:// with a private CA and a client certificate reaches
// every node over TLS: the cluster's redirections name TLS ports.
func TestClusterOverTLS(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, redistest.ClusterConfig{Password: "cluster-pw-8Vb", TLS: true})
	conn, err := redisconn.ParseWith(c.URL, redisconn.Options{CAFile: c.Certs.CAFile,
		CertFile: c.Certs.ClientCertFile, KeyFile: c.Certs.ClientKeyFile})
	if err != nil {
		t.Fatal(err)
	}
	checkQueuesAndLimiter(t, conn)
	rdb := conn.Client()
	defer rdb.Close()
	ctx := context.Background()
	for i := range 30 { // keys in every node's slots
		if err := rdb.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

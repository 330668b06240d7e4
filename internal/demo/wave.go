package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/recallq/recallq/internal/campaign"
	"github.com/recallq/recallq/internal/capture"
	"github.com/recallq/recallq/internal/imsim"
)

// The spam wave: a spammer's messages are captured from the simulator's
// after-send callbacks, then recalled as one campaign found by sender, as
// `recallq campaign start --sender spammer --since 6h` does.
const (
	waveSize   = 60 // the spammer's messages
	waveOthers = 20 // messages of other users in the same hours, left alone
	waveSender = "spammer_1"
	waveToken  = "demo-callback-token"
	waveName   = "spam-wave"
)

// runWave sends the wave through the simulator into a capture, finds it by
// sender, imports it as a campaign for the running worker's feeder and
// checks that every message of the wave, and nothing else, was recalled.
func runWave(ctx context.Context, out io.Writer, sim *imsim.Sim, rdb redis.UniversalClient, queue asynq.RedisConnOpt, log *slog.Logger) error {
	fmt.Fprintf(out, "\nspam wave: %s sends %d messages (and other users %d) while recallq captures the after-send callbacks\n", waveSender, waveSize, waveOthers)
	ix, err := capture.NewIndex(capture.IndexConfig{Redis: rdb})
	if err != nil {
		return err
	}
	defer ix.Close()
	cs, err := capture.New(capture.Config{Index: ix, Logger: log, Auth: capture.Auth{SDKAppIDs: []uint64{sdkAppID}, Token: waveToken}})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for the capture: %w", err)
	}
	srv := &http.Server{Handler: cs, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	sim.SetCallback(imsim.CallbackConfig{URL: "http://" + ln.Addr().String() + capture.CallbackPath, Token: waveToken})
	defer sim.SetCallback(imsim.CallbackConfig{})

	now := time.Now()
	var sent, others []imsim.SentMessage
	for i := range waveSize + waveOthers {
		at := now.Add(-time.Duration(i) * 4 * time.Minute) // the last five hours
		from, to := waveSender, fmt.Sprintf("user_%d", i%37)
		if i >= waveSize {
			from, to = to, fmt.Sprintf("user_%d", 100+i%41)
		}
		m, err := sim.Send(ctx, from, to, at)
		if err != nil {
			return fmt.Errorf("send the wave: %w", err)
		}
		if i < waveSize {
			sent = append(sent, m)
		} else {
			others = append(others, m)
		}
	}
	lobby, err := sim.SendGroup(ctx, waveSender, "@TGS#demo-lobby", now)
	if err != nil {
		return fmt.Errorf("send the wave: %w", err)
	}
	st := cs.Stats()
	fmt.Fprintf(out, "captured %d one-to-one and %d group messages into the index\n", st.IndexedC2C, st.IndexedGroup)

	// recallq campaign start --name spam-wave --sender spammer_1 --since 6h
	fmt.Fprintf(out, "$ recallq campaign start --name %s --sender %s --since 6h\n", waveName, waveSender)
	rows, groups, err := campaign.SenderRows(ctx, ix, capture.Query{SDKAppID: sdkAppID, From: waveSender, Since: now.Add(-6 * time.Hour)})
	if err != nil {
		return err
	}
	res, err := campaign.ImportRows(ctx, campaign.ImportConfig{Redis: rdb, Name: waveName, SDKAppID: sdkAppID, RequestedBy: "recallq demo"},
		"query: --sender "+waveSender+" --since 6h", rows)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "campaign %s: %d messages found and queued (%d one-to-one, %d group)\n", waveName, res.New, len(rows)-groups, groups)

	mgr, err := campaign.NewManager(campaign.ManagerConfig{Redis: rdb, Queue: queue, Logger: log})
	if err != nil {
		return err
	}
	defer mgr.Close()
	bar := newProgress(out, len(rows), "recalling the wave")
	var cst campaign.Status
	for {
		if cst, err = mgr.Status(ctx, waveName); err != nil {
			bar.done()
			return err
		}
		bar.set(int(cst.Ended()))
		if cst.State == campaign.StateDone {
			break
		}
		select {
		case <-ctx.Done():
			bar.done()
			return fmt.Errorf("the spam wave was not recalled before the demo's time was up: %d of %d ended, campaign %s", cst.Ended(), cst.Queued, cst.State)
		case <-time.After(100 * time.Millisecond):
		}
	}
	bar.done()
	recalled, untouched := 0, 0
	for _, m := range sent {
		if f := sim.Fate(m.From, m.To, m.MsgKey); len(f) > 0 && f[len(f)-1] == 0 {
			recalled++
		}
	}
	for _, m := range others {
		if sim.Fate(m.From, m.To, m.MsgKey) == nil {
			untouched++
		}
	}
	fmt.Fprintf(out, "campaign %s done: %d recalled, %d already recalled, %d dead-lettered\n", waveName, cst.Recalled, cst.AlreadyRecalled, cst.DeadLettered)
	groupRecalled := 0
	if f := sim.GroupFate(lobby.GroupID, "", lobby.MsgSeq); len(f) > 0 && f[len(f)-1] == 0 {
		groupRecalled = 1
	}
	fmt.Fprintf(out, "the simulator confirms: %d of the %d wave messages recalled, and %d of its 1 group message; %d of the %d other users' messages untouched\n",
		recalled, waveSize, groupRecalled, untouched, waveOthers)
	if recalled != waveSize || groupRecalled != 1 || untouched != waveOthers {
		return fmt.Errorf("spam wave: %d of %d recalled, %d of 1 group message, %d of %d others untouched", recalled, waveSize, groupRecalled, untouched, waveOthers)
	}
	return nil
}

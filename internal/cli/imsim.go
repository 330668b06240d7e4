package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/imsim"
)

// DefaultIMSimAddr is where the simulator listens unless told otherwise.
const DefaultIMSimAddr = "127.0.0.1:8089"

func newIMSimCmd(g *globals) *cobra.Command {
	var app appFlags
	var addr, latency, tail, admins string
	var failRate, outside float64
	var limit int
	cmd := &cobra.Command{
		Use:   "imsim [--addr HOST:PORT]",
		Short: "Run the simulator of Tencent's admin_msgwithdraw endpoint",
		Long: `Run a faithful simulator of v4/openim/admin_msgwithdraw: it checks every
request as Tencent does (UserSig verified with the app's key), keeps a message
store, enforces 200 calls in any sliding second (answering 60007), and injects
latency and faults. GET /sim/stats reports what it saw. Point workers at it
with TIM_ENDPOINT.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			id, err := app.appID("the simulator")
			if err != nil {
				return err
			}
			key, err := secretKey()
			if err != nil {
				return err
			}
			lo, hi, err := parseLatency(latency)
			if err != nil {
				return err
			}
			var lt imsim.Tail
			if tail != "" {
				if lt, err = imsim.ParseTail(tail); err != nil {
					return usagef("--latency-tail: %v", err)
				}
			}
			if failRate < 0 || failRate > 1 {
				return usagef("--fail-rate must be between 0 and 1; got %v", failRate)
			}
			sim, err := imsim.New(imsim.Config{
				SDKAppID: id, SecretKey: key, Admins: strings.Split(admins, ","),
				Cap: limit, LatencyMin: lo, LatencyMax: hi, LatencyTail: lt, FailRate: failRate, OutsideRate: outside, Logger: log,
			})
			if err != nil {
				return usageError{err}
			}
			return imsim.ListenAndServe(cmd.Context(), addr, sim, func(url string) {
				fmt.Fprintf(g.stdout, "imsim listening on %s (sdkappid %d, cap %d/s, latency %s, fail rate %v)\n", url, id, limit, latency, failRate)
			})
		},
	}
	app.registerApp(cmd, false) // no --redis-url: the simulator uses no Redis
	f := cmd.Flags()
	f.StringVar(&addr, "addr", DefaultIMSimAddr, "address to listen on")
	f.StringVar(&latency, "latency", "0ms", "latency before each request is counted: a duration or a range such as 20ms-50ms")
	f.StringVar(&tail, "latency-tail", "", `lognormal latency instead of --latency, "median,p99" such as 80ms,600ms`)
	f.Float64Var(&failRate, "fail-rate", 0, "fraction of calls answered 91000 (internal error, try again)")
	f.IntVar(&limit, "cap", 200, "calls allowed in any sliding second; more are answered 60007")
	f.Float64Var(&outside, "outside-rate", 0, "calls per second another service of the app makes, evenly spaced, counted toward the cap (POST /sim/outside changes it)")
	f.StringVar(&admins, "admins", envOr("TIM_ADMIN", DefaultAdmin), "comma-separated app admin accounts")
	return cmd
}

// parseLatency reads "30ms" or "20ms-50ms".
func parseLatency(s string) (time.Duration, time.Duration, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	min, err := time.ParseDuration(strings.TrimSpace(lo))
	if err != nil || min < 0 {
		return 0, 0, usagef("--latency %q: give a duration such as 30ms or a range such as 20ms-50ms", s)
	}
	if !isRange {
		return min, min, nil
	}
	max, err := time.ParseDuration(strings.TrimSpace(hi))
	if err != nil || max < min {
		return 0, 0, usagef("--latency %q: give a range low-high such as 20ms-50ms", s)
	}
	return min, max, nil
}

package cli

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/redisconn"
	"github.com/recallq/recallq/internal/tim"
)

// Defaults of the settings every command shares.
const (
	DefaultAdmin = "admin"
	DefaultRate  = 200.0
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// appFlags are the settings that say which app and which Redis. Each
// flag's default comes from its environment variable.
type appFlags struct {
	redisURL string
	sdkAppID string
	admin    string
	region   string
	endpoint string
	rate     float64
	// rateEnvErr is the error of a RECALL_RATE that is not a number,
	// reported by checkRate.
	rateEnvErr error
}

func (a *appFlags) register(cmd *cobra.Command, withTencent bool) {
	f := cmd.Flags()
	f.StringVar(&a.redisURL, "redis-url", envOr("REDIS_URL", redisconn.DefaultURL), "Redis for queues and the limiter; rediss:// for TLS (env REDIS_URL)")
	f.StringVar(&a.sdkAppID, "sdkappid", os.Getenv("TIM_SDKAPPID"), "the app's SDKAppID from the Chat console (env TIM_SDKAPPID)")
	if withTencent {
		f.StringVar(&a.admin, "admin", envOr("TIM_ADMIN", DefaultAdmin), "the app admin account that signs requests (env TIM_ADMIN)")
		f.StringVar(&a.region, "region", envOr("TIM_REGION", tim.DefaultRegion), "regional domain: "+strings.Join(regionNames(), ", ")+" (env TIM_REGION)")
		f.StringVar(&a.endpoint, "endpoint", os.Getenv("TIM_ENDPOINT"), "base URL that overrides the region, e.g. the simulator (env TIM_ENDPOINT)")
		rate := DefaultRate
		if v := os.Getenv("RECALL_RATE"); v != "" {
			if r, err := strconv.ParseFloat(v, 64); err == nil {
				rate = r
			} else {
				a.rateEnvErr = usagef("RECALL_RATE %q is not a number: give calls per second above 0 and at most 200, such as 200", v)
			}
		}
		f.Float64Var(&a.rate, "rate", rate, "calls per second shared by every worker of this app (env RECALL_RATE)")
	}
}

func (a *appFlags) redis() (*redisconn.Conn, error) {
	quietGoRedis()
	c, err := redisconn.ParseEnv(a.redisURL)
	if err != nil {
		return nil, usageError{fmt.Errorf("REDIS_URL: %w", err)}
	}
	return c, nil
}

// checkAdmin refuses an empty --admin: the Tencent client would sign as
// its default while the logs said "".
func (a *appFlags) checkAdmin() error {
	if a.admin == "" {
		return usagef("--admin (TIM_ADMIN) is empty: give the app admin account that signs requests (Chat console > App admin), or leave both unset for %q", DefaultAdmin)
	}
	return nil
}

func (a *appFlags) appID(who string) (uint64, error) {
	if a.sdkAppID == "" {
		return 0, usagef("TIM_SDKAPPID is not set: %s needs the app's SDKAppID from the Chat console (env TIM_SDKAPPID or --sdkappid)", who)
	}
	id, err := strconv.ParseUint(a.sdkAppID, 10, 64)
	if err != nil || id == 0 {
		return 0, usagef("TIM_SDKAPPID %q is not a number: copy the SDKAppID (digits only) from the Chat console", a.sdkAppID)
	}
	return id, nil
}

func (a *appFlags) checkRate() error {
	if a.rateEnvErr != nil && a.rate == DefaultRate {
		return a.rateEnvErr
	}
	if a.rate <= 0 || a.rate > 200 {
		return usagef("RECALL_RATE must be a number above 0 and at most 200 (Tencent's cap for admin_msgwithdraw); got %v", a.rate)
	}
	return nil
}

// secretKey reads the app's secret key from TIM_SECRET_KEY or the file
// TIM_SECRET_KEY_FILE names. It is never taken from a flag, so it does not
// show in process listings or shell history.
func secretKey() (string, error) {
	key, file := os.Getenv("TIM_SECRET_KEY"), os.Getenv("TIM_SECRET_KEY_FILE")
	switch {
	case key != "" && file != "":
		return "", usagef("both TIM_SECRET_KEY and TIM_SECRET_KEY_FILE are set: keep one")
	case key != "":
		return key, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usagef("TIM_SECRET_KEY_FILE: cannot read the secret key: %v", err)
		}
		if k := strings.TrimSpace(string(b)); k != "" {
			return k, nil
		}
		return "", usagef("TIM_SECRET_KEY_FILE %s is empty: put the app's secret key in it", file)
	}
	return "", usagef("the secret key is not set: put the app's key (Chat console > Basic configuration) in TIM_SECRET_KEY, or in a file named by TIM_SECRET_KEY_FILE")
}

func regionNames() []string {
	names := make([]string, 0, len(tim.Regions))
	for n := range tim.Regions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// parseInts reads a comma-separated list of integers, such as "1,4,16".
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

package cli

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/recallq/recallq/internal/apps"
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
	// flags are the command's, to tell a value given by its flag from
	// one taken from the environment (source).
	flags *pflag.FlagSet
}

// register adds --redis-url and the app's flags (registerApp) to cmd.
func (a *appFlags) register(cmd *cobra.Command, withTencent bool) {
	cmd.Flags().StringVar(&a.redisURL, "redis-url", envOr("REDIS_URL", redisconn.DefaultURL), "Redis for queues and the limiter; rediss:// for TLS (env REDIS_URL)")
	a.registerApp(cmd, withTencent)
}

// registerApp adds --sdkappid and, withTencent, the flags of the app's
// Tencent settings to cmd, without --redis-url: the simulator (imsim)
// uses no Redis.
func (a *appFlags) registerApp(cmd *cobra.Command, withTencent bool) {
	f := cmd.Flags()
	a.flags = f
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

// source names where the value of flag name came from, for an error that
// blames it: "--name" when the flag was given, else env, the environment
// variable that gives its default.
func (a *appFlags) source(name, env string) string {
	if a.flags != nil {
		if f := a.flags.Lookup(name); f != nil && f.Changed {
			return "--" + name
		}
	}
	return env
}

func (a *appFlags) redis() (*redisconn.Conn, error) {
	quietGoRedis()
	c, err := redisconn.ParseEnv(a.redisURL)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", a.source("redis-url", "REDIS_URL"), err)}
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
		return 0, usagef("%s %q is not a number: copy the SDKAppID (digits only) from the Chat console", a.source("sdkappid", "TIM_SDKAPPID"), a.sdkAppID)
	}
	return id, nil
}

func (a *appFlags) checkRate() error {
	if a.rateEnvErr != nil && a.rate == DefaultRate {
		return a.rateEnvErr
	}
	if a.rate <= 0 || a.rate > 200 {
		return usagef("%s must be a number above 0 and at most 200 (Tencent's cap for admin_msgwithdraw); got %v", a.source("rate", "RECALL_RATE"), a.rate)
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

// singleAppEnv are the settings of the single-app environment that an
// apps file replaces: with TIM_APPS_FILE set, each is refused rather than
// silently ignored.
var singleAppEnv = []string{"TIM_SDKAPPID", "TIM_SECRET_KEY", "TIM_SECRET_KEY_FILE", "TIM_ADMIN", "TIM_REGION", "TIM_ENDPOINT", "RECALL_RATE"}

// singleAppFlags are their flags (--sdkappid is not among them: with an
// apps file it picks one of its apps).
var singleAppFlags = []string{"admin", "region", "endpoint", "rate"}

// configuredApps returns the apps this deployment serves: those of the apps
// file TIM_APPS_FILE names when it is set (--sdkappid then narrows them to
// that one app), else the one app of the single-app environment
// (TIM_SDKAPPID or --sdkappid, TIM_SECRET_KEY[_FILE], --admin, --region,
// --endpoint, --rate), exactly as before apps files. With keys false the
// secret keys are not read (the commands that only queue need none, and
// run where the keys are not mounted): each App's SecretKey is then empty.
// Every error is a usageError that says what to fix; none shows a key.
func (a *appFlags) configuredApps(cmd *cobra.Command, who string, keys bool) ([]apps.App, error) {
	path := os.Getenv("TIM_APPS_FILE")
	if path == "" {
		app, err := a.singleApp(who, keys)
		if err != nil {
			return nil, err
		}
		return []apps.App{app}, nil
	}
	var set []string
	for _, name := range singleAppEnv {
		if os.Getenv(name) != "" {
			set = append(set, name)
		}
	}
	for _, name := range singleAppFlags {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			set = append(set, "--"+name)
		}
	}
	if len(set) > 0 {
		return nil, usagef("TIM_APPS_FILE is set, and so is %s: with an apps file every app's settings come from the file; unset %s (pick one app of the file with --sdkappid)",
			strings.Join(set, ", "), strings.Join(set, ", "))
	}
	list, err := loadApps(path, keys)
	if err != nil {
		return nil, usageError{err}
	}
	if a.sdkAppID == "" {
		return list, nil
	}
	id, err := strconv.ParseUint(a.sdkAppID, 10, 64)
	if err != nil || id == 0 {
		return nil, usagef("--sdkappid %q is not a number: give the SDKAppID (digits) of one of the apps of TIM_APPS_FILE: %s", a.sdkAppID, appList(list))
	}
	app, ok := apps.Find(list, id)
	if !ok {
		return nil, usagef("--sdkappid %d is not in TIM_APPS_FILE %s: give one of its apps (%s), or add the app to the file", id, path, appList(list))
	}
	return []apps.App{app}, nil
}

// oneApp is the app a command that acts on one app (enqueue, campaign
// start) acts on: the single app of the environment, or the one of the
// apps file that --sdkappid picks; --sdkappid may be left out when the
// file lists one app.
func (a *appFlags) oneApp(cmd *cobra.Command, who string, keys bool) (apps.App, error) {
	list, err := a.configuredApps(cmd, who, keys)
	if err != nil {
		return apps.App{}, err
	}
	if len(list) > 1 {
		return apps.App{}, usagef("TIM_APPS_FILE lists %d apps: say which one %s is for with --sdkappid (%s)", len(list), who, appList(list))
	}
	return list[0], nil
}

// singleApp is the app of the single-app environment; with keys, its
// secret key and Tencent settings are checked too.
func (a *appFlags) singleApp(who string, keys bool) (apps.App, error) {
	id, err := a.appID(who)
	if err != nil {
		return apps.App{}, err
	}
	app := apps.App{SDKAppID: id, Name: strconv.FormatUint(id, 10), Admin: a.admin, Region: a.region, Endpoint: a.endpoint,
		Rate: a.rate, GroupRate: a.rate}
	if !keys {
		return app, nil
	}
	if err := a.checkRate(); err != nil {
		return apps.App{}, err
	}
	if err := a.checkAdmin(); err != nil {
		return apps.App{}, err
	}
	key, err := secretKey()
	if err != nil {
		return apps.App{}, err
	}
	app.SecretKey = apps.Secret(key)
	return app, nil
}

// loadApps reads the apps file: with apps.Load when the keys are needed,
// else with apps.LoadIDs, which leaves every secret_key_file unread.
func loadApps(path string, keys bool) ([]apps.App, error) {
	if keys {
		return apps.Load(path)
	}
	return apps.LoadIDs(path)
}

// appList names the apps for an error: "chat-prod (1400000000), 1400000001".
func appList(list []apps.App) string {
	names := make([]string, len(list))
	for i, a := range list {
		names[i] = appName(a)
	}
	return strings.Join(names, ", ")
}

// appName is "name (sdkappid)", or the SDKAppID alone when it is the name.
func appName(a apps.App) string { return appLabel(a.SDKAppID, map[uint64]string{a.SDKAppID: a.Name}) }

// appLabel is how campaign list and status name an app: "name (sdkappid)"
// for an app configured with a name, else its SDKAppID.
func appLabel(id uint64, names map[uint64]string) string {
	s := strconv.FormatUint(id, 10)
	if n := names[id]; n != "" && n != s {
		return n + " (" + s + ")"
	}
	return s
}

// appNames are the names of the apps of TIM_APPS_FILE by SDKAppID (no key
// is read), for showing which app a campaign is for; nil without an apps
// file.
func appNames() (map[uint64]string, error) {
	path := os.Getenv("TIM_APPS_FILE")
	if path == "" {
		return nil, nil
	}
	list, err := loadApps(path, false)
	if err != nil {
		return nil, usageError{err}
	}
	names := make(map[uint64]string, len(list))
	for _, a := range list {
		names[a.SDKAppID] = a.Name
	}
	return names, nil
}

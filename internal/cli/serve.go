package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/apps"
	"github.com/recallq/recallq/internal/intake"
)

// minTokenLen is the length below which a bearer token is reported as weak.
const minTokenLen = 16

func newServeCmd(g *globals) *cobra.Command {
	var app appFlags
	var addr string
	var rate float64
	var burst, maxBatch int
	var maxBody int64
	var envErrs []error
	// envNum sets a flag's default from its environment variable; a value
	// that does not parse is reported when the command runs.
	envNum := func(name, def, want string, parse func(string) error) {
		v := envOr(name, def)
		if err := parse(v); err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s %q is not %s", name, v, want))
			_ = parse(def)
		}
	}
	envNum("INTAKE_RATE", strconv.FormatFloat(intake.DefaultRate, 'g', -1, 64), "a number of requests per second, such as 50",
		func(s string) (err error) { rate, err = strconv.ParseFloat(s, 64); return })
	envNum("INTAKE_BURST", strconv.Itoa(intake.DefaultBurst), "a whole number of requests, such as 100",
		func(s string) (err error) { burst, err = strconv.Atoi(s); return })
	envNum("INTAKE_MAX_BATCH", strconv.Itoa(intake.DefaultMaxBatch), "a whole number of recalls, such as 1000",
		func(s string) (err error) { maxBatch, err = strconv.Atoi(s); return })
	envNum("INTAKE_MAX_BODY", strconv.Itoa(intake.DefaultMaxBodyBytes), "a whole number of bytes, such as 1048576",
		func(s string) (err error) { maxBody, err = strconv.ParseInt(s, 10, 64); return })

	cmd := &cobra.Command{
		Use:   "serve [--addr HOST:PORT]",
		Short: "Run the HTTP intake: queue recalls from any language",
		Long: `Run the HTTP intake until SIGINT or SIGTERM: an authenticated JSON API that
queues recalls (POST /v1/recalls, one or a batch) and reports a task's state
(GET /v1/recalls/{id}). /healthz, /readyz and /openapi.yaml need no token.

Bearer tokens come from the file INTAKE_TOKENS_FILE names (one name:token a
line, # comments; the name is recorded as who asked; " apps=ID,ID" after the
token limits it to those apps) or from INTAKE_TOKEN (one token named
"default"); never from a flag.

The intake serves the app TIM_SDKAPPID names, or every app of TIM_APPS_FILE
(the workers' apps file: only the SDKAppIDs and names are read, never a key
file). With several apps, a POST names its app: ?sdkappid=ID.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := errors.Join(envErrs...); err != nil {
				return usageError{err}
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			served, err := servedApps(&app, "the intake")
			if err != nil {
				return err
			}
			if _, err := app.redis(); err != nil {
				return err
			}
			toks, err := intakeTokens()
			if err != nil {
				return err
			}
			switch {
			case rate <= 0:
				return usagef("--rate (INTAKE_RATE) must be above 0 requests per second per token; got %v", rate)
			case burst < 1:
				return usagef("--burst (INTAKE_BURST) must be at least 1; got %d", burst)
			case maxBatch < 1:
				return usagef("--max-batch (INTAKE_MAX_BATCH) must be at least 1; got %d", maxBatch)
			case maxBody < 1024:
				return usagef("--max-body (INTAKE_MAX_BODY) must be at least 1024 bytes; got %d", maxBody)
			}
			for _, t := range toks {
				if len(t.Secret) < minTokenLen {
					log.Warn("intake: a bearer token is short: use 32 random characters or more", "client", t.Name)
				}
			}
			s, err := intake.New(intake.Config{
				Addr: addr, RedisURL: app.redisURL, Apps: served, Tokens: toks,
				Rate: rate, Burst: burst, MaxBatch: maxBatch, MaxBodyBytes: maxBody, Logger: log,
			})
			if err != nil {
				return usageError{err}
			}
			defer s.Close()
			return s.ListenAndServe(cmd.Context(), func(url string) {
				fmt.Fprintf(g.stdout, "intake listening on %s (%s, %d clients)\n", url, describeServed(served), len(toks))
			})
		},
	}
	app.register(cmd, false)
	f := cmd.Flags()
	f.StringVar(&addr, "addr", envOr("INTAKE_ADDR", intake.DefaultAddr), "address to listen on (env INTAKE_ADDR)")
	f.Float64Var(&rate, "rate", rate, "requests per second each token may make (env INTAKE_RATE)")
	f.IntVar(&burst, "burst", burst, "requests a token may make at once before --rate applies (env INTAKE_BURST)")
	f.IntVar(&maxBatch, "max-batch", maxBatch, "most recalls one request may carry (env INTAKE_MAX_BATCH)")
	f.Int64Var(&maxBody, "max-body", maxBody, "largest request body in bytes (env INTAKE_MAX_BODY)")
	return cmd
}

// intakeTokens reads the bearer tokens from INTAKE_TOKENS_FILE or
// INTAKE_TOKEN. They are never taken from a flag, so they do not show in
// process listings or shell history.
func intakeTokens() ([]intake.Token, error) {
	file, tok := os.Getenv("INTAKE_TOKENS_FILE"), strings.TrimSpace(os.Getenv("INTAKE_TOKEN"))
	switch {
	case file != "" && tok != "":
		return nil, usagef("both INTAKE_TOKENS_FILE and INTAKE_TOKEN are set: keep one")
	case tok != "":
		t := intake.Token{Name: intake.DefaultTokenName, Secret: tok}
		if strings.ContainsAny(tok, " \t\r\n") {
			return nil, usagef("INTAKE_TOKEN contains a space: a bearer token is one word")
		}
		return []intake.Token{t}, nil
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, usagef("INTAKE_TOKENS_FILE: cannot read the tokens: %v", err)
		}
		defer f.Close()
		toks, err := intake.ParseTokens(f)
		if err != nil {
			return nil, usagef("INTAKE_TOKENS_FILE %s: %v", file, err)
		}
		return toks, nil
	}
	return nil, usagef("no bearer token is set: the intake refuses to run open; put name:token lines in a file named by INTAKE_TOKENS_FILE, or one token in INTAKE_TOKEN")
}

// servedApps are the apps the intake or the capture (who) serves: those
// of TIM_APPS_FILE, read without their key files (neither calls Tencent,
// and their pods need not mount them), or the one app of TIM_SDKAPPID
// (--sdkappid).
func servedApps(app *appFlags, who string) ([]apps.App, error) {
	file := os.Getenv("TIM_APPS_FILE")
	switch {
	case file != "" && app.sdkAppID != "":
		return nil, usagef("both TIM_APPS_FILE and TIM_SDKAPPID (--sdkappid) are set: keep TIM_APPS_FILE to serve its apps, or TIM_SDKAPPID for one app")
	case file != "":
		list, err := apps.LoadIDs(file)
		if err != nil {
			return nil, usageError{err}
		}
		return list, nil
	case app.sdkAppID == "":
		return nil, usagef("TIM_SDKAPPID is not set: %s needs the app's SDKAppID from the Chat console (env TIM_SDKAPPID or --sdkappid), or the apps file of several apps in TIM_APPS_FILE", who)
	}
	id, err := app.appID(who)
	if err != nil {
		return nil, err
	}
	return []apps.App{{SDKAppID: id, Name: strconv.FormatUint(id, 10)}}, nil
}

// describeServed names the apps served for the start line:
// "sdkappid 1400000000" or "apps 1400000000 (prod), 1400000001".
func describeServed(list []apps.App) string {
	if len(list) == 1 {
		return "sdkappid " + strconv.FormatUint(list[0].SDKAppID, 10)
	}
	names := make([]string, len(list))
	for i, a := range list {
		names[i] = strconv.FormatUint(a.SDKAppID, 10)
		if a.Name != names[i] {
			names[i] += " (" + a.Name + ")"
		}
	}
	return "apps " + strings.Join(names, ", ")
}

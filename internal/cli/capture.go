package cli

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/capture"
)

func newCaptureCmd(g *globals) *cobra.Command {
	var app appFlags
	var addr, allow string
	var maxSkew time.Duration
	cmd := &cobra.Command{
		Use:   "capture [--addr HOST:PORT]",
		Short: "Receive Tencent's after-send callbacks and index every message by sender and time",
		Long: `Run the callback receiver until SIGINT or SIGTERM. Point the Chat console's
callback URL at http(s)://HOST:PORT/callback (or /callback/<CAPTURE_PATH_SECRET>)
and enable "after a one-to-one message is sent" and "after a group message is
sent". Each sent message is kept in Redis for CAPTURE_RETENTION (default 7 days),
by sender and time, for "recallq campaign start --sender USER --since 6h".

Only callbacks of TIM_SDKAPPID, or of every app of TIM_APPS_FILE (and of
CAPTURE_SDKAPPIDS) are accepted. Set at
least one of: the callback token (CAPTURE_TOKEN or CAPTURE_TOKEN_FILE, the same
as in the console: every callback must then carry a valid Sign), an IP
allowlist (--allow-ips), a secret path segment (CAPTURE_PATH_SECRET). Secrets
come from the environment or a file, never from a flag.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			served, err := servedApps(&app, "the capture")
			if err != nil {
				return err
			}
			var ids []uint64
			for _, a := range served {
				ids = append(ids, a.SDKAppID)
			}
			for _, f := range strings.FieldsFunc(os.Getenv("CAPTURE_SDKAPPIDS"), isListSep) {
				n, err := strconv.ParseUint(f, 10, 64)
				if err != nil || n == 0 {
					return usagef("CAPTURE_SDKAPPIDS: %q is not an SDKAppID: give digits, comma-separated", f)
				}
				ids = append(ids, n)
			}
			auth := capture.Auth{SDKAppIDs: ids, MaxSkew: maxSkew, PathSecret: capture.Secret(os.Getenv("CAPTURE_PATH_SECRET"))}
			tok, err := captureToken()
			if err != nil {
				return err
			}
			auth.Token = capture.Secret(tok)
			for _, f := range strings.FieldsFunc(allow, isListSep) {
				p, err := netip.ParsePrefix(f)
				if err != nil {
					a, aerr := netip.ParseAddr(f)
					if aerr != nil {
						return usagef("--allow-ips (CAPTURE_ALLOW_IPS): %q is not an address or a network such as 10.0.0.0/8", f)
					}
					p = netip.PrefixFrom(a, a.BitLen())
				}
				auth.AllowIPs = append(auth.AllowIPs, p.Masked())
			}
			if auth.Token == "" && len(auth.AllowIPs) == 0 && auth.PathSecret == "" {
				return usagef("no authentication: the capture refuses to run open; set the callback token (CAPTURE_TOKEN_FILE or CAPTURE_TOKEN, the same as in the Chat console), " +
					"an IP allowlist (--allow-ips or CAPTURE_ALLOW_IPS) or a secret path segment (CAPTURE_PATH_SECRET)")
			}
			icfg, err := captureIndexConfig()
			if err != nil {
				return err
			}
			conn, err := app.redis()
			if err != nil {
				return err
			}
			rdb := conn.Client()
			defer rdb.Close()
			icfg.Redis = rdb
			ix, err := capture.NewIndex(icfg)
			if err != nil {
				return usageError{err}
			}
			defer ix.Close()
			s, err := capture.New(capture.Config{Addr: addr, Auth: auth, Index: ix, Redis: rdb, Logger: log})
			if err != nil {
				return usageError{err}
			}
			err = s.ListenAndServe(cmd.Context(), func(url string) {
				path := capture.CallbackPath
				if auth.PathSecret != "" {
					path += "/<CAPTURE_PATH_SECRET>"
				}
				fmt.Fprintf(g.stdout, "capture listening on %s%s (sdkappids %v, retention %s)\n", url, path, ids, icfg.Retention)
			})
			st := s.Stats()
			log.Info("capture: stopped", "indexed_c2c", st.IndexedC2C, "indexed_group", st.IndexedGroup, "failed_sends", st.FailedSends,
				"online_only", st.OnlineOnly, "ignored", st.Ignored, "index_errors", st.IndexErrors, "caller_gone", st.CallerGone, "refused", st.Refused)
			return err
		},
	}
	app.register(cmd, false)
	f := cmd.Flags()
	f.StringVar(&addr, "addr", envOr("CAPTURE_ADDR", capture.DefaultAddr), "address to listen on (env CAPTURE_ADDR)")
	f.StringVar(&allow, "allow-ips", os.Getenv("CAPTURE_ALLOW_IPS"), "addresses or networks callbacks may come from, comma-separated (env CAPTURE_ALLOW_IPS)")
	f.DurationVar(&maxSkew, "max-skew", capture.DefaultMaxSkew, "how far a signed callback's RequestTime may be from this clock")
	return cmd
}

func isListSep(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }

// captureToken reads the callback token from CAPTURE_TOKEN or from the file
// CAPTURE_TOKEN_FILE names; never from a flag.
func captureToken() (string, error) {
	v, file := strings.TrimSpace(os.Getenv("CAPTURE_TOKEN")), os.Getenv("CAPTURE_TOKEN_FILE")
	switch {
	case v != "" && file != "":
		return "", usagef("both CAPTURE_TOKEN and CAPTURE_TOKEN_FILE are set: keep one")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usagef("CAPTURE_TOKEN_FILE: cannot read the callback token: %v", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return v, nil
}

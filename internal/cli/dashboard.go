package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/recallq/recallq/internal/dashboard"
	"github.com/recallq/recallq/internal/redisconn"
)

// howToSetCredentials ends every refusal for want of credentials.
const howToSetCredentials = "set DASHBOARD_USER and DASHBOARD_PASSWORD (or DASHBOARD_PASSWORD_FILE, a file holding the password)"

func newDashboardCmd(g *globals) *cobra.Command {
	var app appFlags
	var addr string
	var readOnly, open bool
	cmd := &cobra.Command{
		Use:   "dashboard [--addr HOST:PORT] [--read-only]",
		Short: "Serve the queues' web console (asynqmon) behind a password",
		Long: `Serve asynqmon, asynq's web console, over the queues in REDIS_URL: queue
sizes, pending, retrying and archived (dead-lettered) recalls, with buttons to
run, archive or delete them. Every page but /healthz asks for the user and
password in DASHBOARD_USER and DASHBOARD_PASSWORD (or DASHBOARD_PASSWORD_FILE).
--read-only (or DASHBOARD_READ_ONLY=true) lets people look but not change
anything. --open serves without a password, on a loopback address only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("read-only") {
				if readOnly, err = envBool("DASHBOARD_READ_ONLY"); err != nil {
					return err
				}
			}
			user, password, err := dashboardCredentials(open)
			if err != nil {
				return err
			}
			names, err := appNames()
			if err != nil {
				return err
			}
			conn, err := app.redis()
			if err != nil {
				return err
			}
			d, err := dashboard.New(dashboard.Config{
				AppNames:  names,
				Addr:      addr,
				Redis:     conn.AsynqOpt(),
				RedisName: conn.String(),
				Username:  user,
				Password:  password,
				Open:      open,
				ReadOnly:  readOnly,
				Logger:    log,
			})
			if err != nil {
				return dashboardUsage(err, addr)
			}
			defer d.Close()
			err = d.ListenAndServe(cmd.Context(), func(url string) {
				mode := "user " + user
				if open {
					mode = "no authentication"
				}
				if readOnly {
					mode += ", read-only"
				}
				fmt.Fprintf(g.stdout, "dashboard on %s (%s; queues in %s)\n", url, mode, conn)
			})
			return dashboardUsage(err, addr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&app.redisURL, "redis-url", envOr("REDIS_URL", redisconn.DefaultURL), "Redis that holds the queues; rediss:// for TLS (env REDIS_URL)")
	f.StringVar(&addr, "addr", envOr("DASHBOARD_ADDR", dashboard.DefaultAddr), "address to listen on (env DASHBOARD_ADDR)")
	f.BoolVar(&readOnly, "read-only", false, "viewers can look but not delete, run or archive tasks (env DASHBOARD_READ_ONLY=true)")
	f.BoolVar(&open, "open", false, "serve without authentication; allowed only on a loopback --addr")
	return cmd
}

// dashboardCredentials reads the dashboard's user and password from
// DASHBOARD_USER and DASHBOARD_PASSWORD or the file DASHBOARD_PASSWORD_FILE
// names. The password never comes from a flag, so it does not show in
// process listings or shell history. With open, no credential may be set.
func dashboardCredentials(open bool) (user, password string, err error) {
	user, password = os.Getenv("DASHBOARD_USER"), os.Getenv("DASHBOARD_PASSWORD")
	file := os.Getenv("DASHBOARD_PASSWORD_FILE")
	switch {
	case open && (user != "" || password != "" || file != ""):
		return "", "", usagef("--open serves the dashboard without authentication, but DASHBOARD_USER or a password is set: unset them, or drop --open")
	case open:
		return "", "", nil
	case password != "" && file != "":
		return "", "", usagef("both DASHBOARD_PASSWORD and DASHBOARD_PASSWORD_FILE are set: keep one")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", "", usagef("DASHBOARD_PASSWORD_FILE: cannot read the dashboard password: %v", err)
		}
		// A trailing line break is the file's, not the password's.
		if password = strings.TrimRight(string(b), "\r\n"); password == "" {
			return "", "", usagef("DASHBOARD_PASSWORD_FILE %s is empty: put the dashboard password in it", file)
		}
	}
	switch {
	case user == "" && password == "":
		return "", "", usagef("the dashboard needs credentials: %s; to run it without authentication on this machine only, pass --open with a loopback --addr such as %s", howToSetCredentials, dashboard.DefaultAddr)
	case user == "":
		return "", "", usagef("a dashboard password is set but DASHBOARD_USER is not: set the user name too")
	case password == "":
		return "", "", usagef("DASHBOARD_USER is set but no password: set DASHBOARD_PASSWORD or DASHBOARD_PASSWORD_FILE")
	}
	return user, password, nil
}

// dashboardUsage turns the dashboard's refusals into messages that say what
// to set; other errors pass through.
func dashboardUsage(err error, addr string) error {
	switch {
	case errors.Is(err, dashboard.ErrOpenNotLoopback):
		return usagef("--open serves the dashboard without authentication, so it is allowed only on a loopback address (127.0.0.1:PORT, [::1]:PORT, localhost:PORT), not --addr %s: to listen there, %s instead", addr, howToSetCredentials)
	case errors.Is(err, dashboard.ErrNoCredentials):
		return usagef("the dashboard needs credentials: %s", howToSetCredentials)
	case errors.Is(err, dashboard.ErrOpenWithCredentials):
		return usagef("--open and dashboard credentials are both set: keep one")
	case errors.Is(err, dashboard.ErrBadAddr):
		return usagef("--addr %q: give host:port, such as %s", addr, dashboard.DefaultAddr)
	}
	return err
}

// envBool reads a true/false environment variable; unset is false.
func envBool(name string) (bool, error) {
	v := os.Getenv(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, usagef("%s %q: use true or false", name, v)
	}
	return b, nil
}

package intake

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/recallq/recallq/internal/apps"
	"github.com/recallq/recallq/tasks"
)

// appParam is the query parameter that names a request's app.
const appParam = "sdkappid"

// servedApps returns the apps cfg serves: Config.Apps, or the one app of
// Config.SDKAppID. It returns an error wrapping ErrConfig that names the
// field for none, both, an SDKAppID of 0 or one listed twice.
func servedApps(cfg Config) ([]apps.App, error) {
	switch {
	case cfg.SDKAppID != 0 && len(cfg.Apps) > 0:
		return nil, fmt.Errorf("%w: both Config.SDKAppID and Config.Apps are set: give one app in SDKAppID or every app in Apps", ErrConfig)
	case cfg.SDKAppID != 0:
		return []apps.App{{SDKAppID: cfg.SDKAppID, Name: strconv.FormatUint(cfg.SDKAppID, 10)}}, nil
	case len(cfg.Apps) == 0:
		return nil, fmt.Errorf("%w: Config.SDKAppID is not set: give the app's SDKAppID from the Chat console (or several apps in Config.Apps)", ErrConfig)
	case len(cfg.Apps) > apps.MaxApps:
		return nil, fmt.Errorf("%w: Config.Apps lists %d apps, more than %d: run one intake per group of apps", ErrConfig, len(cfg.Apps), apps.MaxApps)
	}
	out := make([]apps.App, len(cfg.Apps))
	for i, a := range cfg.Apps {
		switch {
		case a.SDKAppID == 0:
			return nil, fmt.Errorf("%w: Config.Apps[%d].SDKAppID is not set: give the app's SDKAppID from the Chat console", ErrConfig, i)
		case slices.ContainsFunc(cfg.Apps[:i], func(b apps.App) bool { return b.SDKAppID == a.SDKAppID }):
			return nil, fmt.Errorf("%w: Config.Apps lists app %d twice: list each app once", ErrConfig, a.SDKAppID)
		}
		// Only the app's identity: the intake never calls Tencent.
		out[i] = apps.App{SDKAppID: a.SDKAppID, Name: a.Name}
		if out[i].Name == "" {
			out[i].Name = strconv.FormatUint(a.SDKAppID, 10)
		}
	}
	return out, nil
}

// requestApp is the app a POST names with ?sdkappid=, which the request's
// client may use; with one app served, the parameter may be left out. It
// answers and returns false when the app is missing (422, several apps
// served), not an SDKAppID (400), not served (422, naming the apps the
// client may use) or not one of the client's (403). A client limited to
// some apps is told only of those: whether another app is served is not
// its business.
func (s *Server) requestApp(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	c := slotOf(r.Context()).client
	values, given := r.URL.Query()[appParam]
	refuse := func(status int, malformed bool, reason string) (uint64, bool) {
		p := Problem{Field: appParam, Reason: reason, malformed: malformed}
		writeError(w, status, "the app is not right; nothing was queued: "+appParam+": "+reason, []Problem{p})
		return 0, false
	}
	switch {
	case !given && len(s.apps) == 1:
		slotOf(r.Context()).app = s.apps[0].SDKAppID
		return s.apps[0].SDKAppID, true
	case !given:
		return refuse(http.StatusUnprocessableEntity, false, fmt.Sprintf(
			"is missing: this intake serves several apps: name the app in the query, as in ?%s=%d; your token may use %s",
			appParam, c.apps[0], s.describeApps(c.apps)))
	case len(values) > 1:
		return refuse(http.StatusBadRequest, true, "is given more than once: give it once")
	}
	id, err := strconv.ParseUint(values[0], 10, 64)
	switch {
	case err != nil || id == 0 || values[0] != strconv.FormatUint(id, 10):
		return refuse(http.StatusBadRequest, true, fmt.Sprintf(
			"must be an SDKAppID in digits, as in ?%s=%d; your token may use %s", appParam, c.apps[0], s.describeApps(c.apps)))
	case slices.Contains(c.apps, id):
		slotOf(r.Context()).app = id
		return id, true
	case c.allApps:
		return refuse(http.StatusUnprocessableEntity, false, fmt.Sprintf(
			"%d is not an app this intake serves: use %s", id, s.describeApps(c.apps)))
	}
	writeError(w, http.StatusForbidden, fmt.Sprintf(
		"the token %q may not use app %d: it may use %s; nothing was queued. To use another app, ask the intake's operator to add it to the token's apps= in INTAKE_TOKENS_FILE",
		c.name, id, s.describeApps(c.apps)), nil)
	return 0, false
}

// describeApps names the apps ids: "1400000000 (chat-prod) or 1400000001".
func (s *Server) describeApps(ids []uint64) string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = strconv.FormatUint(id, 10)
		if a, ok := apps.Find(s.apps, id); ok && a.Name != names[i] {
			names[i] += " (" + a.Name + ")"
		}
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// taskQueues are the queues a task of the apps ids may be in: each app's
// urgent and bulk queues, then the legacy queues (tasks queued before
// queues carried the app).
func taskQueues(ids []uint64) []string {
	qs := make([]string, 0, 2*len(ids)+len(tasks.LegacyQueues))
	for _, id := range ids {
		qs = append(qs, tasks.AppQueue(tasks.QueueUrgent, id), tasks.AppQueue(tasks.QueueBulk, id))
	}
	return append(qs, tasks.LegacyQueues...)
}

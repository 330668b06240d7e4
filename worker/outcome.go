package worker

import (
	"fmt"
	"sort"

	"github.com/recallq/recallq/internal/tim"
)

// Class is what the worker does with a Tencent result code.
type Class int

const (
	// Done: the message is recalled (or already was). The task completes.
	Done Class = iota
	// DeadLetter: the recall can never succeed as asked. The task goes to
	// the archived (dead-letter) set at once, with the code in its error.
	DeadLetter
	// Transient: try again later with exponential backoff and jitter,
	// using up one of the task's retries each time.
	Transient
	// RateLimited: the API says slow down. Every worker of the app backs
	// off together; the task is tried again without using up a retry.
	RateLimited
	// SigStale: the UserSig is expired or rejected. Regenerate it and try
	// again at once; a second refusal in a row is a configuration error.
	SigStale
	// Configuration: the app's configuration is wrong (key, admin, region,
	// plan). It is not the task's fault: the task is retried late without
	// using up a retry, and the worker logs at error level what to fix.
	Configuration
	// Unknown: a code we do not know. A few retries, then the dead-letter set.
	Unknown
)

var classNames = [...]string{"done", "dead_letter", "transient", "rate_limited", "sig_stale", "config", "unknown"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Outcome is one row of the result table.
type Outcome struct {
	Code    int
	Class   Class
	Meaning string // Tencent's meaning, for logs and stored task errors
	Fix     string // for Config rows: what the operator must do
}

// UnknownRetries is how many attempts a task answered with an unknown code
// gets before it is dead-lettered (fewer than a transient failure gets).
const UnknownRetries = 3

// NoAnswer is the Code of a call that got no Tencent answer: refused, reset,
// timed out, an HTTP error or a body that is not Tencent's. It is in
// Events, in the metrics' code label ("-1") and in campaign audits.
const NoAnswer = -1

// noAnswer is the row of a call that got no answer on a path that is not
// misconfigured (see pathOutcomes for those): transient.
var noAnswer = Outcome{NoAnswer, Transient, "no answer", ""}

// outcomes is the one table that maps every Tencent result code we know to
// our behaviour (the README's "What happens to each answer" lists it);
// the worker's tests pin each row end to end.
var outcomes = withSigRefusals(map[int]Outcome{
	0:     {0, Done, "recalled", ""},
	20023: {20023, Done, "the message has already been recalled", ""},

	20022: {20022, DeadLetter, "the message to recall does not exist", ""},
	90001: {90001, DeadLetter, "the JSON request could not be parsed", ""},
	90003: {90003, DeadLetter, "To_Account is missing or the account does not exist", ""},
	90008: {90008, DeadLetter, "From_Account is missing or the account does not exist", ""},
	90054: {90054, DeadLetter, "invalid MsgKey", ""},

	91000: {91000, Transient, "internal service error", ""},
	60008: {60008, Transient, "service timeout or HTTP format error", ""},
	60014: {60014, Transient, "account switch or account check timeout", ""},
	70169: {70169, Transient, "internal timeout", ""},
	70500: {70500, Transient, "internal server error", ""},

	60007: {60007, RateLimited, "REST API call frequency exceeds the limit", ""},
	60011: {60011, RateLimited, "SDKAppID request frequency exceeded", ""},
	60018: {60018, RateLimited, "requests too frequent", ""},
	60019: {60019, RateLimited, "requests too frequent", ""},

	// SigStale: the codes the client renews the UserSig after
	// (tim.SigRefusal), added by withSigRefusals.

	90009: {90009, Configuration, "the request requires app admin permissions", "set TIM_ADMIN to an app admin account (Chat console > App admin)"},
	60002: {60002, Configuration, "HTTP parse error", "check TIM_ENDPOINT / TIM_REGION: the request URL is malformed"},
	60003: {60003, Configuration, "request JSON parse error", "check TIM_ENDPOINT: something between recallq and Tencent rewrites the body"},
	60006: {60006, Configuration, "SDKAppID invalid", "check TIM_SDKAPPID against the Chat console"},
	60009: {60009, Configuration, "request resource error", "check TIM_ENDPOINT: the path is wrong"},
	60010: {60010, Configuration, "the request requires app admin permissions", "set TIM_ADMIN to an app admin account"},
	60012: {60012, Configuration, "SDKAppID missing from the request", "set TIM_SDKAPPID"},
	60016: {60016, Configuration, "SDKAppID disabled", "re-enable the app in the Chat console"},
	60017: {60017, Configuration, "request disabled", "check the app's status in the Chat console"},
	60020: {60020, Configuration, "package expired, plan not purchased or in arrears", "renew the Chat plan in the console"},
	60021: {60021, Configuration, "caller IP not allowed", "add the workers' egress IPs to the app's IP allowlist"},
	60025: {60025, Configuration, "bad SDKAppID, identifier, UserSig or contenttype in the URL", "check TIM_SDKAPPID, TIM_ADMIN and TIM_SECRET_KEY"},
	60026: {60026, Configuration, "the domain and the SDKAppID's data centre do not match", "set TIM_REGION to the region the app was created in"},
	60028: {60028, Configuration, "trial edition REST volume limit reached within 24 h", "upgrade the plan or wait for the 24 h window"},
	70003: {70003, Configuration, "UserSig illegal", "check TIM_SECRET_KEY and TIM_SDKAPPID"},
	70009: {70009, Configuration, "UserSig verification failed", "check TIM_SECRET_KEY: it must be the app's current key"},
	70013: {70013, Configuration, "UserSig's UserID does not match", "check TIM_ADMIN"},
	70014: {70014, Configuration, "UserSig's SDKAppID does not match", "check TIM_SDKAPPID"},
	70016: {70016, Configuration, "the app's key is missing", "generate a key in the Chat console and set TIM_SECRET_KEY"},
	70020: {70020, Configuration, "SDKAppID not found", "check TIM_SDKAPPID"},
	70050: {70050, Configuration, "UserSig failed and the caller is rate limited for a minute", "check TIM_SECRET_KEY; Tencent re-verifies after one minute"},
})

// withSigRefusals adds the SigStale rows to table: the answers after which
// the client itself makes the next call carry a new UserSig, as it lists
// them (tim.SigRefusal), so that the handler's "call again at once" and
// the client's renewal cover the same codes.
func withSigRefusals(table map[int]Outcome) map[int]Outcome {
	for _, code := range tim.SigRefusalCodes() {
		meaning, _ := tim.SigRefusal(code)
		table[code] = Outcome{code, SigStale, meaning, ""}
	}
	return table
}

// pathOutcomes are the rows for calls that got no Tencent answer because
// the path to Tencent is misconfigured (tim.Misconfigured): configuration
// errors like the codes above, never the task's fault. Code is NoAnswer.
var pathOutcomes = map[tim.PathFault]Outcome{
	tim.PathCertificate: {NoAnswer, Configuration, "the TLS certificate was not accepted (x509)",
		"check TIM_ENDPOINT, and that the image has CA certificates (and a TLS-intercepting proxy's CA)"},
	tim.PathDNS: {NoAnswer, Configuration, "the endpoint's host name does not exist (DNS)",
		"check TIM_REGION / TIM_ENDPOINT and the pod's DNS"},
	tim.PathProxyRefused: {NoAnswer, Configuration, "a proxy or gateway refused the request (HTTP 401, 403, 407 or CONNECT refused)",
		"allow the workers' egress to Tencent's domain in the proxy (HTTPS_PROXY) or firewall"},
	tim.PathNotFound: {NoAnswer, Configuration, "the URL does not lead to Tencent's REST API (HTTP 404, 405 or 410)",
		"check TIM_ENDPOINT: scheme://host[:port] of Tencent's REST API or the simulator, no path"},
}

// ClassifyTransport returns the row for err, an error of the API client
// that carries no Tencent answer, when it shows a misconfigured path to
// Tencent; ok is false for failures that may pass (refused, reset,
// timeouts, 5xx), which are Transient.
func ClassifyTransport(err error) (o Outcome, ok bool) {
	o, ok = pathOutcomes[tim.Misconfigured(err)]
	return o, ok
}

// Classify returns the row for code (NoAnswer: transient); a code not in
// the table is Unknown.
func Classify(code int) Outcome {
	if code == NoAnswer {
		return noAnswer
	}
	if o, ok := outcomes[code]; ok {
		return o
	}
	return Outcome{Code: code, Class: Unknown, Meaning: "unknown result code"}
}

// Outcomes returns every row of the table of Tencent's codes, ordered by
// code (NoAnswer, not a code of Tencent's, is not among them).
func Outcomes() []Outcome {
	rows := make([]Outcome, 0, len(outcomes))
	for _, o := range outcomes {
		rows = append(rows, o)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Code < rows[j].Code })
	return rows
}

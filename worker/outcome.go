package worker

import (
	"fmt"
	"sort"
	"strings"

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
	// Outcome.Console says whose configuration: the app's in the Chat
	// console, or this worker's own.
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
	// API is the API whose answers the row reads: tim.APIWithdraw,
	// tim.APIGroupRecall, or "" for a code every REST API shares (0, and
	// 60000-79999: the gateway's, the UserSig's, the SDKAppID's).
	API string
	// Console, on a Configuration row, says the fault is the app's
	// setting in the Chat console (or Tencent's about the app: its
	// status, its plan, a command disabled for it): every worker of the
	// app meets it alike and no worker's settings cure it. Its circuit
	// opens as any other's, but the worker stays ready (/readyz): a
	// rollout neither causes nor cures it. Without it the fault is this
	// worker's own environment (its key, TIM_ADMIN, endpoint, egress IP,
	// TLS), and an open circuit makes the worker unready.
	Console bool
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
var noAnswer = Outcome{Code: NoAnswer, Class: Transient, Meaning: "no answer"}

// outcomes is the one table that maps every Tencent result code we know to
// our behaviour, for both APIs (the README's "What happens to each answer"
// lists it); the worker's tests pin each row end to end. A row's API says
// whose answer it reads: the two APIs' own codes do not overlap, and the
// codes every REST API shares have one row for both.
var outcomes = withSigRefusals(rows(
	api("", map[int]Outcome{
		0: {Class: Done, Meaning: "recalled"},

		60008: {Class: Transient, Meaning: "service timeout or HTTP format error"},
		60014: {Class: Transient, Meaning: "account switch or account check timeout"},
		70169: {Class: Transient, Meaning: "internal timeout"},
		70500: {Class: Transient, Meaning: "internal server error"},

		60007: {Class: RateLimited, Meaning: "REST API call frequency exceeds the limit"},
		60011: {Class: RateLimited, Meaning: "SDKAppID request frequency exceeded"},
		60018: {Class: RateLimited, Meaning: "requests too frequent"},
		60019: {Class: RateLimited, Meaning: "requests too frequent"},

		// SigStale: the codes the client renews the UserSig after
		// (tim.SigRefusal), added by withSigRefusals.

		60002: {Class: Configuration, Meaning: "HTTP parse error", Fix: "check TIM_ENDPOINT / TIM_REGION: the request URL is malformed"},
		60003: {Class: Configuration, Meaning: "request JSON parse error", Fix: "check TIM_ENDPOINT: something between recallq and Tencent rewrites the body"},
		60006: {Class: Configuration, Meaning: "SDKAppID invalid", Fix: "check TIM_SDKAPPID against the Chat console"},
		60009: {Class: Configuration, Meaning: "request resource error", Fix: "check TIM_ENDPOINT: the path is wrong"},
		60010: {Class: Configuration, Meaning: "the request requires app admin permissions", Fix: "set TIM_ADMIN to an app admin account"},
		60012: {Class: Configuration, Meaning: "SDKAppID missing from the request", Fix: "set TIM_SDKAPPID"},
		60016: {Class: Configuration, Console: true, Meaning: "SDKAppID disabled", Fix: "re-enable the app in the Chat console"},
		60017: {Class: Configuration, Meaning: "request disabled", Fix: "check the app's status in the Chat console"},
		60020: {Class: Configuration, Console: true, Meaning: "package expired, plan not purchased or in arrears", Fix: "renew the Chat plan in the console"},
		60021: {Class: Configuration, Meaning: "caller IP not allowed", Fix: "add the workers' egress IPs to the app's IP allowlist"},
		60025: {Class: Configuration, Meaning: "bad SDKAppID, identifier, UserSig or contenttype in the URL", Fix: "check TIM_SDKAPPID, TIM_ADMIN and TIM_SECRET_KEY"},
		60026: {Class: Configuration, Meaning: "the domain and the SDKAppID's data centre do not match", Fix: "set TIM_REGION to the region the app was created in"},
		60028: {Class: Configuration, Console: true, Meaning: "trial edition REST volume limit reached within 24 h", Fix: "upgrade the plan or wait for the 24 h window"},
		70003: {Class: Configuration, Meaning: "UserSig illegal", Fix: "check TIM_SECRET_KEY and TIM_SDKAPPID"},
		70009: {Class: Configuration, Meaning: "UserSig verification failed", Fix: "check TIM_SECRET_KEY: it must be the app's current key"},
		70013: {Class: Configuration, Meaning: "UserSig's UserID does not match", Fix: "check TIM_ADMIN"},
		70014: {Class: Configuration, Meaning: "UserSig's SDKAppID does not match", Fix: "check TIM_SDKAPPID"},
		70016: {Class: Configuration, Meaning: "the app's key is missing", Fix: "generate a key in the Chat console and set TIM_SECRET_KEY"},
		70020: {Class: Configuration, Meaning: "SDKAppID not found", Fix: "check TIM_SDKAPPID"},
		70050: {Class: Configuration, Meaning: "UserSig failed and the caller is rate limited for a minute", Fix: "check TIM_SECRET_KEY; Tencent re-verifies after one minute"},
	}),

	// admin_msgwithdraw's own codes.
	api(tim.APIWithdraw, map[int]Outcome{
		20023: {Class: Done, Meaning: "the message has already been recalled"},

		20022: {Class: DeadLetter, Meaning: "the message to recall does not exist"},
		90001: {Class: DeadLetter, Meaning: "the JSON request could not be parsed"},
		90003: {Class: DeadLetter, Meaning: "To_Account is missing or the account does not exist"},
		90008: {Class: DeadLetter, Meaning: "From_Account is missing or the account does not exist"},
		90054: {Class: DeadLetter, Meaning: "invalid MsgKey"},

		91000: {Class: Transient, Meaning: "internal service error"},

		90009: {Class: Configuration, Meaning: "the request requires app admin permissions", Fix: "set TIM_ADMIN to an app admin account (Chat console > App admin)"},
	}),

	// group_msg_recall's own codes: a seq's RetCode in RecallRetList, or
	// the call's ErrorCode, which then decides for every seq of the call
	// (GroupSeqOutcome).
	api(tim.APIGroupRecall, map[int]Outcome{
		// Tencent does not document whether recalling a recalled seq
		// answers 0 or 10030; both are done. 10030 also means "no such
		// message": a wrong MsgSeq then reads as done, the price of never
		// dead-lettering a message an earlier attempt whose answer was
		// lost did recall. The metrics count it under its own code.
		10030: {Class: Done, Meaning: "no such message: already recalled (or never in the group)"},

		10031: {Class: DeadLetter, Meaning: "the message is past the recall time limit (roaming retention)"},
		10032: {Class: DeadLetter, Meaning: "the message cannot be recalled"},
		10033: {Class: DeadLetter, Meaning: "the group's type does not allow message recall"},
		10004: {Class: DeadLetter, Meaning: "invalid parameter (GroupId, TopicId or MsgSeqList)"},
		10010: {Class: DeadLetter, Meaning: "the group does not exist any more (dismissed)"},
		10011: {Class: DeadLetter, Meaning: "the JSON request could not be parsed"},
		10015: {Class: DeadLetter, Meaning: "no group has this GroupId"},

		10002: {Class: Transient, Meaning: "internal server error"},

		10006: {Class: RateLimited, Meaning: "operation frequency limit exceeded"},
		10023: {Class: RateLimited, Meaning: "frequency limit exceeded"},

		10041: {Class: Configuration, Console: true, Meaning: "the app has group message recall disabled", Fix: "enable group message recall for the app in the Chat console"},
		10003: {Class: Configuration, Meaning: "no such command: the request did not reach group_msg_recall", Fix: "check TIM_ENDPOINT (or a proxy rewriting paths)"},
		10007: {Class: Configuration, Meaning: "no permission", Fix: "set TIM_ADMIN to an app admin account"},
		10026: {Class: Configuration, Console: true, Meaning: "the app's use of this command is disabled", Fix: "ask Tencent why group_msg_recall is disabled for the SDKAppID"},
	}),
))

// api sets the Code and API of each row of table.
func api(name string, table map[int]Outcome) map[int]Outcome {
	for code, o := range table {
		o.Code, o.API = code, name
		table[code] = o
	}
	return table
}

// rows joins tables whose codes do not overlap; a code twice is a bug of
// the table, caught at start.
func rows(tables ...map[int]Outcome) map[int]Outcome {
	all := map[int]Outcome{}
	for _, t := range tables {
		for code, o := range t {
			if _, dup := all[code]; dup {
				panic(fmt.Sprintf("worker: outcome table: code %d twice", code))
			}
			all[code] = o
		}
	}
	return all
}

// withSigRefusals adds the SigStale rows to table: the answers after which
// the client itself makes the next call carry a new UserSig, as it lists
// them (tim.SigRefusal), so that the handler's "call again at once" and
// the client's renewal cover the same codes.
func withSigRefusals(table map[int]Outcome) map[int]Outcome {
	for _, code := range tim.SigRefusalCodes() {
		meaning, _ := tim.SigRefusal(code)
		table[code] = Outcome{Code: code, Class: SigStale, Meaning: meaning}
	}
	return table
}

// pathOutcomes are the rows for calls that got no Tencent answer because
// the path to Tencent is misconfigured (tim.Misconfigured): configuration
// errors like the codes above, never the task's fault, and this worker's
// own (not Console). Code is NoAnswer.
var pathOutcomes = map[tim.PathFault]Outcome{
	tim.PathCertificate: pathRow("the TLS certificate was not accepted (x509)",
		"check TIM_ENDPOINT, and that the image has CA certificates (and a TLS-intercepting proxy's CA)"),
	tim.PathDNS: pathRow("the endpoint's host name does not exist (DNS)",
		"check TIM_REGION / TIM_ENDPOINT and the pod's DNS"),
	tim.PathProxyRefused: pathRow("a proxy or gateway refused the request (HTTP 401, 403, 407 or CONNECT refused)",
		"allow the workers' egress to Tencent's domain in the proxy (HTTPS_PROXY) or firewall"),
	tim.PathNotFound: pathRow("the URL does not lead to Tencent's REST API (HTTP 404, 405 or 410)",
		"check TIM_ENDPOINT: scheme://host[:port] of Tencent's REST API or the simulator, no path"),
	tim.PathRedirect: pathRow("the endpoint redirects (HTTP 3xx; Tencent never does)",
		"check TIM_ENDPOINT: https:// and the region's domain (or leave it empty and set TIM_REGION); redirects are not followed"),
	tim.PathRefusedRequest: pathRow("a server that is not Tencent's API refused the request (HTTP 400, 411, 413, 414 or 431; Tencent answers 200)",
		"check TIM_ENDPOINT: http:// at a port that serves TLS answers 400 (use https://); or raise a proxy's limits on URL, header or body size"),
	tim.PathPlainHTTP: pathRow("TIM_ENDPOINT speaks plain HTTP to an https:// URL",
		"use http:// in TIM_ENDPOINT, or the port that serves TLS"),
	tim.PathTLSHandshake: pathRow("the TLS handshake failed: the endpoint does not speak TLS, or refused this client (protocol version, cipher suites, server name, client certificate)",
		"check TIM_ENDPOINT's scheme, host and port (Tencent's domain serves TLS on 443), and any TLS-intercepting proxy"),
}

// pathRow is a row of pathOutcomes.
func pathRow(meaning, fix string) Outcome {
	return Outcome{Code: NoAnswer, Class: Configuration, Meaning: meaning, Fix: fix}
}

// ClassifyTransport returns the row for err, an error of the API client
// that carries no Tencent answer, when it shows a misconfigured path to
// Tencent; ok is false for failures that may pass (refused, reset,
// timeouts, 5xx), which are Transient.
func ClassifyTransport(err error) (o Outcome, ok bool) {
	o, ok = pathOutcomes[tim.Misconfigured(err)]
	return o, ok
}

// Classify returns the row for code as admin_msgwithdraw's answer
// (NoAnswer: transient); a code not in the table for that API is Unknown.
func Classify(code int) Outcome { return classify(tim.APIWithdraw, code) }

// ClassifyGroup returns the row for code as group_msg_recall's answer, a
// call's ErrorCode or a seq's RetCode (NoAnswer: transient); a code not in
// the table for that API is Unknown.
func ClassifyGroup(code int) Outcome { return classify(tim.APIGroupRecall, code) }

func classify(apiName string, code int) Outcome {
	if code == NoAnswer {
		return noAnswer
	}
	if o, ok := outcomes[code]; ok && (o.API == "" || o.API == apiName) {
		return o
	}
	return Outcome{Code: code, Class: Unknown, Meaning: "unknown result code", API: apiName}
}

// notListed is the row of a seq the answer of a successful group call did
// not list (or listed twice with different codes): nothing says it was
// recalled, so it is not done; it is tried again.
var notListed = Outcome{Code: NoAnswer, Class: Transient, Meaning: "Tencent's answer did not list this MsgSeq", API: tim.APIGroupRecall}

// GroupSeqOutcome returns the row that decides one seq of a
// group_msg_recall call that was answered (resp, with err nil): the
// call's ErrorCode's row for every seq when it is not 0; otherwise the
// seq's own RetCode's row, read from RecallRetList individually (a call
// answering 0 may hold failed seqs); a seq the list does not answer is
// transient, never done.
func GroupSeqOutcome(callCode int, seq tim.SeqResult) Outcome {
	switch {
	case callCode != 0:
		return ClassifyGroup(callCode)
	case !seq.Answered:
		return notListed
	}
	return ClassifyGroup(seq.RetCode)
}

// Outcomes returns every row of admin_msgwithdraw's table (its own codes
// and the shared ones), ordered by code (NoAnswer, not a code of
// Tencent's, is not among them).
func Outcomes() []Outcome { return outcomesOf(tim.APIWithdraw) }

// GroupOutcomes returns every row of group_msg_recall's table (its own
// codes and the shared ones), ordered by code.
func GroupOutcomes() []Outcome { return outcomesOf(tim.APIGroupRecall) }

func outcomesOf(apiName string) []Outcome {
	rows := make([]Outcome, 0, len(outcomes))
	for _, o := range outcomes {
		if o.API == "" || o.API == apiName {
			rows = append(rows, o)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Code < rows[j].Code })
	return rows
}

// appsFileFields says, for each setting of the single-app environment a
// Fix (or a Meaning) may name, what replaces it for an app of an apps file
// (TIM_APPS_FILE), where those variables are refused: the app's field in
// the file. TIM_SECRET_KEY_FILE comes before TIM_SECRET_KEY, which it
// starts with (the replacer tries the pairs in order).
var appsFileFields = strings.NewReplacer(
	"TIM_SECRET_KEY_FILE", "secret_key_file",
	"TIM_SECRET_KEY", "the key in secret_key_file",
	"TIM_SDKAPPID", "sdkappid",
	"TIM_ADMIN", "admin",
	"TIM_REGION", "region",
	"TIM_ENDPOINT", "endpoint",
	"RECALL_RATE", "rate",
)

// inAppsFile returns o as it reads for app, the name of the app in the
// apps file the worker runs from: the settings its Meaning and Fix name
// are the app's fields in the file, and a Fix that names any says which
// app's ("... (app chat-staging in TIM_APPS_FILE)"). With app "" (a
// single-app worker) o is unchanged.
func (o Outcome) inAppsFile(app string) Outcome {
	if app == "" {
		return o
	}
	o.Meaning = appsFileFields.Replace(o.Meaning)
	if fix := appsFileFields.Replace(o.Fix); fix != o.Fix {
		o.Fix = fix + " (app " + app + " in TIM_APPS_FILE)"
	}
	return o
}

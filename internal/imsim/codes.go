package imsim

import "fmt"

// The result codes the simulator answers, with Tencent's meanings (the
// worker's outcome table, worker/outcome.go, says what each leads to); the
// simulator's choice of code for each check is listed in the package comment.
const (
	codeOK              = 0
	codeMsgNotFound     = 20022 // the message to recall does not exist
	codeAlreadyRecalled = 20023 // the message has already been recalled
	codeHTTPParse       = 60002 // HTTP parse error: method or URL malformed
	codeBadSDKAppID     = 60006 // SDKAppID invalid (not this app)
	codeRateLimited     = 60007 // REST API call frequency exceeds the limit
	codeBadResource     = 60009 // request resource error: unknown API path
	codeNoSDKAppID      = 60012 // SDKAppID missing from the URL
	codeBadURLParam     = 60025 // bad SDKAppID / identifier / UserSig / contenttype in URL
	codeSigExpired      = 70001 // UserSig expired
	codeSigIllegal      = 70003 // UserSig illegal: cannot be decoded
	codeSigVerify       = 70009 // UserSig verification failed (wrong key)
	codeSigIdentifier   = 70013 // identifier differs from the UserSig's
	codeSigSDKAppID     = 70014 // SDKAppID differs from the UserSig's
	codeBadJSON         = 90001 // the body is not a JSON object
	codeBadToAccount    = 90003 // To_Account missing or does not exist
	codeBadFromAccount  = 90008 // From_Account missing or does not exist
	codeNotAdmin        = 90009 // needs app admin permission
	codeBadMsgKey       = 90054 // invalid MsgKey
	codeInternal        = 91000 // internal service error, try again

	// group_msg_recall's codes (group.go).
	codeGroupInternal       = 10002 // internal error, try again
	codeGroupBadCommand     = 10003 // no such command (API path)
	codeGroupBadParam       = 10004 // invalid parameter
	codeGroupTooFrequent    = 10006 // operation frequency limit: the API's rate limit
	codeGroupNoPermission   = 10007 // no permission: the identifier is no app admin
	codeGroupGone           = 10010 // the group does not exist any more (dismissed)
	codeGroupBadID          = 10015 // no group with this GroupId
	codeGroupMsgNotFound    = 10030 // (per seq) the message to recall does not exist
	codeGroupPastWindow     = 10031 // (per seq) past the recall time limit
	codeGroupNotRecallable  = 10032 // (per seq) the message cannot be recalled
	codeGroupTypeNoRecall   = 10033 // (per seq) the group type does not allow recall
	codeGroupRecallDisabled = 10041 // (per seq) the app has group message recall disabled
)

// codeInfo is the ErrorInfo text for each code, written after Tencent's.
var codeInfo = map[int]string{
	codeOK:              "",
	codeMsgNotFound:     "The message to recall does not exist. Please check.",
	codeAlreadyRecalled: "The message has been recalled.",
	codeHTTPParse:       "HTTP parse error, please check the URL and the method",
	codeBadSDKAppID:     "SDKAppID is invalid, please check it",
	codeRateLimited:     "REST API call frequency exceeds the limit, please slow down",
	codeBadResource:     "request resource error, please check the URL",
	codeNoSDKAppID:      "SDKAppID is required in the URL, please check it",
	codeBadURLParam:     "invalid parameter in the URL, please check sdkappid, identifier, usersig and contenttype",
	codeSigExpired:      "UserSig has expired, please generate a new one",
	codeSigIllegal:      "UserSig is illegal, it cannot be decoded",
	codeSigVerify:       "UserSig verification failed, please check the secret key",
	codeSigIdentifier:   "the identifier in the URL does not match the one in the UserSig",
	codeSigSDKAppID:     "the SDKAppID in the URL does not match the one in the UserSig",
	codeBadJSON:         "Fail to Parse json data of body, Please check it",
	codeBadToAccount:    "The To_Account field is missing in the JSON request packet or the account it specifies does not exist.",
	codeBadFromAccount:  "The From_Account field is missing in the JSON request packet or the account it specifies does not exist.",
	codeNotAdmin:        "The request requires app admin permissions.",
	codeBadMsgKey:       "Invalid MsgKey.",
	codeInternal:        "Internal service error. Try again.",
	60020:               "The professional package has expired or the account is in arrears.",

	codeGroupInternal:       "Internal server error. Try again.",
	codeGroupBadCommand:     "Invalid command name in the request.",
	codeGroupBadParam:       "Invalid parameter. Check the request against the error description.",
	codeGroupTooFrequent:    "Operation frequency limit exceeded. Reduce the call frequency.",
	codeGroupNoPermission:   "Insufficient operation permissions.",
	codeGroupGone:           "The group does not exist, or it existed and has been dismissed.",
	codeGroupBadID:          "Invalid group ID: no group has this ID.",
	codeGroupMsgNotFound:    "The message to recall does not exist.",
	codeGroupPastWindow:     "The message is past the recall time limit.",
	codeGroupNotRecallable:  "The message does not support recall.",
	codeGroupTypeNoRecall:   "The group type does not support message recall.",
	codeGroupRecallDisabled: "The app has group message recall disabled.",
}

// infoFor returns the ErrorInfo text for code, with detail appended when
// it is not empty. Detail never carries a UserSig or the secret key.
func infoFor(code int, detail string) string {
	info, ok := codeInfo[code]
	if !ok {
		info = fmt.Sprintf("simulated error %d", code)
	}
	if detail != "" {
		info += ": " + detail
	}
	return info
}

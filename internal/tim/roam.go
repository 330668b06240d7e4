package tim

import (
	"context"
	"encoding/json"
	"fmt"
)

// pathGetRoamMsg is the path of the admin_getroammsg API.
const pathGetRoamMsg = "/v4/openim/" + APIRoam

// RoamFlagRecalled is the MsgFlagBits value of a recalled message in
// admin_getroammsg's MsgList (0 is a normal message).
const RoamFlagRecalled = 8

// RoamRequest is the body of admin_getroammsg: the one-to-one history of
// Operator and Peer (as Operator sees it) between MinTime and MaxTime
// (Unix seconds, inclusive), at most MaxCnt messages a page. LastMsgKey,
// from the previous page's answer, asks for the next page.
type RoamRequest struct {
	Operator   string `json:"Operator_Account"`
	Peer       string `json:"Peer_Account"`
	MaxCnt     int    `json:"MaxCnt"`
	MinTime    int64  `json:"MinTime"`
	MaxTime    int64  `json:"MaxTime"`
	LastMsgKey string `json:"LastMsgKey,omitempty"`
}

// RoamMsg is one message of a history page.
type RoamMsg struct {
	From         string `json:"From_Account"`
	To           string `json:"To_Account"`
	MsgSeq       uint64 `json:"MsgSeq"`
	MsgRandom    uint64 `json:"MsgRandom"`
	MsgTimeStamp int64  `json:"MsgTimeStamp"`
	MsgFlagBits  int    `json:"MsgFlagBits"`
	MsgKey       string `json:"MsgKey"`
}

// Recalled reports whether Tencent marks the message recalled.
func (m RoamMsg) Recalled() bool { return m.MsgFlagBits&RoamFlagRecalled != 0 }

// RoamPage is admin_getroammsg's answer.
type RoamPage struct {
	Response
	// Complete is 1 when this page ends the history asked for; 0 means
	// ask again with LastMsgKey (and MaxTime = LastMsgTime).
	Complete    int       `json:"Complete"`
	MsgCnt      int       `json:"MsgCnt"`
	LastMsgTime int64     `json:"LastMsgTime"`
	LastMsgKey  string    `json:"LastMsgKey"`
	MsgList     []RoamMsg `json:"MsgList"`
}

// GetRoamMsg reads one page of a one-to-one history with
// admin_getroammsg. Its answer and errors are those of Withdraw: a
// Tencent error code is in the RoamPage's Response with a nil error; the
// error is non-nil only when no Tencent answer was read. It does not
// retry: the caller takes a slot of the shared limiter for each call.
func (c *Client) GetRoamMsg(ctx context.Context, req RoamRequest) (RoamPage, error) {
	const op = "tim: admin_getroammsg"
	body, err := json.Marshal(req)
	if err != nil {
		return RoamPage{}, fmt.Errorf("%s: encode request: %w", op, err)
	}
	var page RoamPage
	resp, sig, err := c.callInto(ctx, op, pathGetRoamMsg, body, &page)
	if err != nil {
		return RoamPage{Response: resp}, err
	}
	page.Response = resp
	c.refusedSig(ctx, resp.ErrorCode, sig)
	return page, nil
}

package imsim

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// groupControlPrefix starts the control endpoints of group_msg_recall.
const groupControlPrefix = "/sim/group/"

// serveGroupControl serves the control endpoints of group_msg_recall,
// JSON in and out like the others (a mistake answers 4xx {"error": "..."}):
//
//	GET  /sim/group/stats     GroupStats: this API's calls, per second, max in a sliding window, RetCodes
//	GET  /sim/group/settings  the GroupSettings in force
//	POST /sim/group/settings  SetGroupSettings: {"RecalledAgain": "ok" | "not_found",
//	                          "RecallDisabled": true, "Window": "1h"} (a field left out is zero: the default)
//	POST /sim/group/create    CreateGroup: {"GroupId": "g1", "Messages": 1000, "Age": "1h",
//	                          "TypeForbidsRecall": false}; Age (or SentAt, RFC 3339) dates the messages
//	POST /sim/group/post      PostGroupMessage: {"GroupId": "g1", "TopicId": "", "Age": "0s"} -> {"MsgSeq": 1001}
//	POST /sim/group/message   SetGroupMessage: {"GroupId": "g1", "TopicId": "", "MsgSeq": 5,
//	                          "State": "present" | "recalled" | "gone" | "unrecallable"}
//	POST /sim/group/dismiss   DismissGroup: {"GroupId": "g1"}
//	POST /sim/group/force     {"GroupId": "g1", "Code": 10002, "Times": 1}: ForceGroup, the call's
//	                          ErrorCode; with "MsgSeq" (and "TopicId"): ForceGroupSeq, that seq's RetCode
//	GET  /sim/group/fate?group=g1&topic=&seq=5   GroupFate: {"codes": [0, 10030]}
//
// POST /sim/reset resets these too.
func (s *Sim) serveGroupControl(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case groupControlPrefix + "stats":
		if allow(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, s.GroupStats())
		}
	case groupControlPrefix + "settings":
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			writeJSON(w, http.StatusOK, s.GroupSettings())
			return
		}
		var in GroupSettings
		if allow(w, r, http.MethodPost) && readJSON(w, r, &in) {
			if in.Window < 0 {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("Window is %v, must not be negative", time.Duration(in.Window)))
				return
			}
			s.SetGroupSettings(in)
			writeJSON(w, http.StatusOK, in)
		}
	case groupControlPrefix + "create":
		var in struct {
			GroupSpec
			Age jsonDuration
		}
		if !allow(w, r, http.MethodPost) || !readJSON(w, r, &in) {
			return
		}
		if in.SentAt.IsZero() {
			in.SentAt = s.cfg.Now().Add(-time.Duration(in.Age))
		}
		if err := s.CreateGroup(in.GroupSpec); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, in.GroupSpec)
	case groupControlPrefix + "post":
		var in struct {
			GroupID string `json:"GroupId"`
			TopicID string `json:"TopicId"`
			Age     jsonDuration
		}
		if !allow(w, r, http.MethodPost) || !readJSON(w, r, &in) || !required(w, in.GroupID) {
			return
		}
		seq := s.PostGroupMessage(in.GroupID, in.TopicID, s.cfg.Now().Add(-time.Duration(in.Age)))
		writeJSON(w, http.StatusOK, map[string]uint64{"MsgSeq": seq})
	case groupControlPrefix + "message":
		var in struct {
			GroupID string `json:"GroupId"`
			TopicID string `json:"TopicId"`
			MsgSeq  uint64
			State   GroupMsgState
		}
		if allow(w, r, http.MethodPost) && readJSON(w, r, &in) && required(w, in.GroupID) {
			groupDone(w, in, s.SetGroupMessage(in.GroupID, in.TopicID, in.MsgSeq, in.State))
		}
	case groupControlPrefix + "dismiss":
		var in struct {
			GroupID string `json:"GroupId"`
		}
		if allow(w, r, http.MethodPost) && readJSON(w, r, &in) && required(w, in.GroupID) {
			groupDone(w, in, s.DismissGroup(in.GroupID))
		}
	case groupControlPrefix + "force":
		var in struct {
			GroupID string `json:"GroupId"`
			TopicID string `json:"TopicId"`
			MsgSeq  uint64
			Code    int
			Times   int
		}
		if !allow(w, r, http.MethodPost) || !readJSON(w, r, &in) || !required(w, in.GroupID) {
			return
		}
		if in.MsgSeq == 0 {
			s.ForceGroup(in.GroupID, in.Code, in.Times)
		} else {
			s.ForceGroupSeq(in.GroupID, in.TopicID, in.MsgSeq, in.Code, in.Times)
		}
		writeJSON(w, http.StatusOK, in)
	case groupControlPrefix + "fate":
		if !allow(w, r, http.MethodGet) {
			return
		}
		q := r.URL.Query()
		seq, err := strconv.ParseUint(q.Get("seq"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "seq must be a MsgSeq, a decimal integer")
			return
		}
		codes := s.GroupFate(q.Get("group"), q.Get("topic"), seq)
		if codes == nil {
			codes = []int{}
		}
		writeJSON(w, http.StatusOK, map[string][]int{"codes": codes})
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no control endpoint %q", r.URL.Path))
	}
}

// required answers 400 when the GroupId of a control request is empty.
func required(w http.ResponseWriter, groupID string) bool {
	if groupID == "" {
		writeError(w, http.StatusBadRequest, "GroupId is required")
		return false
	}
	return true
}

// groupDone answers in, or 404 for ErrNoGroup, or 400 for another error.
func groupDone(w http.ResponseWriter, in any, err error) {
	switch {
	case errors.Is(err, ErrNoGroup):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		writeJSON(w, http.StatusOK, in)
	}
}

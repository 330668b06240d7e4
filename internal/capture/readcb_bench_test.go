package capture

import "testing"

func BenchmarkReadCallback(b *testing.B) {
	body := []byte(`{"CallbackCommand":"C2C.CallbackAfterSendMsg","From_Account":"user_000123","To_Account":"user_004567","MsgSeq":48374,"MsgRandom":2207799223,"MsgTime":1764547200,"MsgKey":"48374_2207799223_1764547200","OnlineOnlyFlag":0,"SendMsgResult":0,"ErrorInfo":"send msg succeed","UnreadMsgNum":1,"MsgBody":[{"MsgType":"TIMTextElem","MsgContent":{"Text":"hello, this is an ordinary chat message of some length"}}],"CloudCustomData":"","EventTime":1764547200123}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, v, err := readCallback(CommandC2CAfterSend, body, 1764547200); err != nil || v != index {
			b.Fatal(err, v)
		}
	}
}

package strictjson

import (
	"errors"
	"testing"
)

func TestObjectRefusesWhatEncodingJSONLetsThrough(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     error  // nil = accepted
		field    string // the field the error names
	}{
		{"plain", `{"MsgKey":"1_1_1","n":2,"a":[1,{"b":null}]}`, nil, ""},
		{"duplicate name", `{"MsgKey":"a","MsgKey":"b"}`, ErrDuplicateName, "MsgKey"},
		{"duplicate name in a nested object", `{"recalls":[{"MsgKey":"a"},{"MsgKey":"x","MsgKey":"y"}]}`, ErrDuplicateName, "recalls[1].MsgKey"},
		{"invalid UTF-8", "{\"MsgKey\":\"\xff\xfe\"}", ErrInvalidUTF8, "MsgKey"},
		{"invalid UTF-8 in a nested value", "{\"recalls\":[{\"To_Account\":\"a\xc3\"}]}", ErrInvalidUTF8, "recalls[0].To_Account"},
		{"lone surrogate escape", `{"MsgKey":"\ud800"}`, ErrInvalidUTF8, "MsgKey"},
		{"invalid UTF-8 in a name", "{\"Msg\xffKey\":\"a\"}", ErrInvalidUTF8, ""},
		{"broken", `{"MsgKey":"a"`, ErrSyntax, ""},
		{"two values", `{"a":1} {"b":2}`, ErrSyntax, ""},
		{"array", `["x"]`, ErrNotObject, ""},
		{"null", `null`, ErrNotObject, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj, err := Object([]byte(tc.in))
			if tc.want == nil {
				if err != nil || obj == nil {
					t.Fatalf("Object = %v, %v; want an object", obj, err)
				}
				return
			}
			var e *Error
			if !errors.Is(err, tc.want) || !errors.As(err, &e) {
				t.Fatalf("err = %v; want %v", err, tc.want)
			}
			if e.Field() != tc.field {
				t.Fatalf("err %v names field %q; want %q", err, e.Field(), tc.field)
			}
		})
	}
}

func TestStringNamesTheTypeItGot(t *testing.T) {
	obj, err := Object([]byte(`{"s":"a\u00e9","n":12,"o":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := String(obj["s"]); err != nil || s != "aé" {
		t.Fatalf("String = %q, %v", s, err)
	}
	for k, want := range map[string]string{"n": "want a string, got a JSON number", "o": "want a string, got a JSON object"} {
		if _, err := String(obj[k]); !errors.Is(err, ErrWrongType) || err.Error() != want {
			t.Errorf("String(%s) = %v; want %q", k, err, want)
		}
	}
}

func TestMiscasedFindsTheNameMeant(t *testing.T) {
	known := []string{"From_Account", "MsgKey"}
	for in, want := range map[string]string{"from_account": "From_Account", "MSGKEY": "MsgKey", "MsgKey": "", "extra": ""} {
		if got := Miscased(in, known); got != want {
			t.Errorf("Miscased(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestUnmarshalIsStrictAndCaseSensitive(t *testing.T) {
	type v struct {
		A string `json:"A"`
	}
	var got v
	if err := Unmarshal([]byte(`{"A":"x","other":1}`), &got); err != nil || got.A != "x" {
		t.Fatalf("Unmarshal = %+v, %v", got, err)
	}
	if err := Unmarshal([]byte(`{"A":"x","A":"y"}`), &got); !errors.Is(err, ErrDuplicateName) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := Unmarshal([]byte("{\"A\":\"\xff\"}"), &got); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("invalid UTF-8: %v", err)
	}
	got = v{}
	if err := Unmarshal([]byte(`{"a":"x"}`), &got); err != nil || got.A != "" {
		t.Fatalf("a matched A: %+v, %v", got, err)
	}
	if err := Unmarshal([]byte(`{"A":1}`), &got); !errors.Is(err, ErrWrongType) {
		t.Fatalf("number: %v", err)
	}
}

package reqlog

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

func fullLine() Line {
	return Line{
		V: 1, TS: "2021-03-02T17:04:05.123456Z", DurMS: 12.5, Req: "9f0c3a00000000000000000000000001",
		Host: "web-7", PID: 4121, Seq: 88123, IP: "203.0.113.9", UA: "Mozilla/5.0 (X11)",
		Dev: "d1", ASN: 64500, Cache: "miss", Method: "GET", Path: "/notifications", Status: 200,
		SidIn: "4be2", UidIn: "u_1842", SidOut: "a91c", UidOut: "u_77", UidView: "u_1842",
		Event: EventGuardBlock, Detail: "foreign_session",
	}
}

// decodeAny decodes one JSON object into a generic map.
func decodeAny(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	return m
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for name, l := range map[string]Line{
		"full":    fullLine(),
		"minimal": {V: 1, TS: "2021-03-02T17:04:05.000000Z", Req: "00", Host: "h", PID: 1, Seq: 1, IP: "::1", Method: "GET", Path: "/"},
		"hostile": {V: 1, UA: "a\"b\\c\x00\x1f\x7f\n\r\t<>&\u2028\u2029\xff\xc3(é", Path: "/\"},{\"uid_in\":\"x", Method: "G\nET", Detail: "\xed\xa0\x80"},
	} {
		t.Run(name, func(t *testing.T) {
			got := AppendJSON(nil, &l)
			if !bytes.HasSuffix(got, []byte("}\n")) || bytes.Count(got, []byte("\n")) != 1 {
				t.Fatalf("not one line: %q", got)
			}
			if !utf8.Valid(got) {
				t.Fatalf("not UTF-8: %q", got)
			}
			want, err := json.Marshal(l)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := decodeAny(t, got), decodeAny(t, want); !reflect.DeepEqual(g, w) {
				t.Fatalf("AppendJSON differs from encoding/json\n got %v\nwant %v", g, w)
			}
			var back Line
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			if name != "hostile" && !reflect.DeepEqual(back, l) {
				t.Fatalf("round trip: got %+v, want %+v", back, l)
			}
		})
	}
}

func TestAppendJSONEscapes(t *testing.T) {
	for in, want := range map[string]string{
		"plain":        `"plain"`,
		`q"b\`:         `"q\"b\\"`,
		"\n\r\t\x00":   `"\n\r\t\u0000"`,
		"\x1f\x7f":     "\"\\u001f\x7f\"",
		"\xff":         `"\ufffd"`,
		"a\xc3":        `"a\ufffd"`,
		"é€😀":          `"é€😀"`,
		"\u2028\u2029": `"\u2028\u2029"`,
		"\xed\xa0\x80": `"\ufffd\ufffd\ufffd"`, // a UTF-16 surrogate is not UTF-8
	} {
		if got := string(appendString(nil, in)); got != want {
			t.Errorf("appendString(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestAppendJSONNonFiniteDuration(t *testing.T) {
	l := fullLine()
	for _, f := range []float64{posInf(), -posInf(), posInf() - posInf()} {
		l.DurMS = f
		if m := decodeAny(t, AppendJSON(nil, &l)); m["dur_ms"] != 0.0 {
			t.Errorf("dur_ms %v encoded as %v, want 0", f, m["dur_ms"])
		}
	}
}

func posInf() float64 { z := 0.0; return 1 / z }

// FuzzAppendJSON checks that whatever the client-controlled strings hold,
// the line is one line of valid JSON and UTF-8 that decodes to what
// encoding/json would have written.
func FuzzAppendJSON(f *testing.F) {
	f.Add("Mozilla/5.0", "/", "GET", "")
	f.Fuzz(func(t *testing.T, ua, path, method, detail string) {
		l := fullLine()
		l.UA, l.Path, l.Method, l.Detail = ua, path, method, detail
		got := AppendJSON(nil, &l)
		if !json.Valid(got) {
			t.Fatalf("invalid JSON: %q", got)
		}
		if !utf8.Valid(got) {
			t.Fatalf("invalid UTF-8: %q", got)
		}
		if i := bytes.IndexByte(got, '\n'); i != len(got)-1 {
			t.Fatalf("newline inside the line at %d: %q", i, got)
		}
		var back Line
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		ref, _ := json.Marshal(l)
		var want Line
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, want) {
			t.Fatalf("decoded %+v, encoding/json gives %+v", back, want)
		}
		if utf8.ValidString(path) && back.Path != path {
			t.Fatalf("valid path %q came back as %q", path, back.Path)
		}
	})
}

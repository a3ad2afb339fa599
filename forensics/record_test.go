package forensics

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cordon-sec/cordon/reqlog"
)

var parseCases = []string{
	`{"v":1,"ts":"2021-03-02T17:04:05.123456Z","dur_ms":12.5,"req":"9f0c3a","host":"web-7","pid":4121,"seq":88123,"ip":"203.0.113.9","ua":"Mozilla/5.0 ...","method":"GET","path":"/notifications","status":200,"sid_in":"4be2","uid_in":"u_1842","sid_out":"a91c","uid_out":"u_77","uid_view":"u_1842"}`,
	` { "v" : 1 , "ts" : "2021-03-02T17:04:05Z" , "req":"r","host":"h","pid":1,"seq":2,"ip":"::1","method":"GET","path":"/","status":0 } `,
	`{"v":1,"ts":"2021-03-02T17:04:05.1+01:00","req":"r","host":"h","pid":1,"seq":2,"ip":"1.2.3.4","ua":"a \"quoted\" \\ back\/slash \u00e9 \ud83d\ude00 tab\t","method":"GET","path":"/","status":200}`,
	`{"v":1,"ts":"2021-03-02T17:04:05Z","req":"r","host":"h","pid":1,"seq":2,"ip":"1.2.3.4","method":"GET","path":"/","status":200,"uid_in":null,"sid_in":"","extra":{"a":[1,2,{"b":"}"}],"c":null},"more":[true,false,-1.5e3]}`,
	`{"v":1,"ts":"2021-03-02T17:04:05Z","req":"r","host":"h","pid":1.0,"seq":2e2,"ip":"1.2.3.4","method":"GET","path":"/","status":200,"asn":64500,"cache":"hit","dev":"d","event":"login","detail":"x"}`,
}

func TestParseLineAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range parseCases {
		var r Record
		if err := parseLine([]byte(c), &r); err != nil {
			t.Errorf("%s: %v", c, err)
			continue
		}
		var l reqlog.Line
		dec := json.NewDecoder(strings.NewReader(strings.ReplaceAll(strings.ReplaceAll(c, `"pid":1.0`, `"pid":1`), `"seq":2e2`, `"seq":200`)))
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		ts, _ := time.Parse(time.RFC3339Nano, l.TS)
		got := []any{r.V, r.TS, r.Req, r.Host, r.PID, r.Seq, r.IP, r.UA, r.Dev, r.ASN, r.Cache, r.Method, r.Path, r.Status, r.SidIn, r.UidIn, r.SidOut, r.UidOut, r.UidView, r.Event, r.Detail}
		want := []any{int64(l.V), ts.UnixNano(), l.Req, l.Host, int64(l.PID), l.Seq, l.IP, l.UA, l.Dev, int64(l.ASN), l.Cache, l.Method, l.Path, int64(l.Status), l.SidIn, l.UidIn, l.SidOut, l.UidOut, l.UidView, l.Event, l.Detail}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: field %d = %#v, want %#v", c, i, got[i], want[i])
			}
		}
	}
}

func TestParseLineRejects(t *testing.T) {
	cases := map[string]string{
		``:       "not a JSON object",
		`[1,2]`:  "not a JSON object",
		`{"v":1`: "expected ',' or '}'",
		`{"v":1,"ts":"yesterday","req":"r","host":"h","pid":1,"seq":1,"ip":"x"}`:                                 "RFC 3339",
		`{"v":1,"ts":"2021-03-02T17:04:05Z","host":"h","pid":1,"seq":1,"ip":"x"}`:                                "missing required field req",
		`{"v":1,"ts":"2021-03-02T17:04:05Z","req":"r","host":"h","pid":"1","seq":1,"ip":"x"}`:                    "field pid",
		`{"v":1,"ts":"2021-03-02T17:04:05Z","req":"r","host":"h","pid":1,"seq":1,"ip":"x"} trailing`:             "text after",
		`{"v":1,"ts":"2021-13-02T17:04:05Z","req":"r","host":"h","pid":1,"seq":1,"ip":"x"}`:                      "RFC 3339",
		`{"v":1,"ua":"bad \x escape","ts":"2021-03-02T17:04:05Z","req":"r","host":"h","pid":1,"seq":1,"ip":"x"}`: "escape",
	}
	for line, want := range cases {
		var r Record
		err := parseLine([]byte(line), &r)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", line, err, want)
		}
	}
}

func TestParseTS(t *testing.T) {
	for _, s := range []string{"2021-03-02T17:04:05.123456Z", "2000-02-29T23:59:59.999999999Z", "1970-01-01T00:00:00Z", "2026-11-25T20:31:06.5Z", "2021-03-02T17:04:05.123456+02:00", "1969-12-31T23:59:59.1Z"} {
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseTS(s)
		if !ok || got != want.UnixNano() {
			t.Errorf("%s: %d %v, want %d", s, got, ok, want.UnixNano())
		}
	}
	for _, s := range []string{"2021-02-29T00:00:00Z", "2021-03-02 17:04:05Z", "2021-03-02T25:04:05Z", "2021-03-02T17:04:05.Z"} {
		if _, ok := parseTS(s); ok {
			t.Errorf("%s parsed", s)
		}
	}
}

func TestClipKeepsUTF8(t *testing.T) {
	for n := 0; n < 12; n++ {
		if c := clip("ab…cd…éf", n); !utf8.ValidString(c) {
			t.Errorf("clip to %d: %q is not UTF-8", n, c)
		}
	}
}

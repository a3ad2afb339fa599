package jsonstr

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzAppend: Marshal is json.Marshal byte for byte; Log decodes to the
// same string and differs only in spelling (no HTML escapes, \b and \f
// long).
func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x01\b\f\n\r\t\x1f", "<a href='x'>&</a>", "\u2028\u2029", "\xff\xfe ok \xc3", "ünï©ødé"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := Append(nil, s, Marshal); string(got) != string(want) {
			t.Fatalf("Marshal style %s, json.Marshal %s", got, want)
		}
		logged := Append([]byte("x"), s, Log)[1:]
		var back, wantBack string
		if err := json.Unmarshal(logged, &back); err != nil {
			t.Fatalf("Log style %s is not JSON: %v", logged, err)
		}
		json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("Log style decodes to %q, want %q", back, wantBack)
		}
		if strings.Contains(string(logged), `\u003c`) || strings.Contains(string(logged), `\b`) && !strings.Contains(s, `\b`) {
			t.Fatalf("Log style used a Marshal spelling: %s", logged)
		}
	})
}

func TestLogSpelling(t *testing.T) {
	if got := string(Append(nil, "<\b\f\x01>", Log)); got != `"<\u0008\u000c\u0001>"` {
		t.Errorf("Log style: %s", got)
	}
}

package forensics

import (
	"bytes"
	"encoding/json"
	"hash/maphash"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseLine feeds arbitrary bytes to the request-log line parser and
// to what the parsing workers compute from a line (session keys, client,
// network), the bytes an attacker controls through User-Agents, paths and
// forged log lines. A line is either rejected with an error or read with
// every required field present; nothing panics, nothing reads past the
// line. The seeds (testdata/fuzz/FuzzParseLine) run as ordinary tests.
func FuzzParseLine(f *testing.F) {
	for _, c := range parseCases {
		f.Add([]byte(c))
	}
	f.Add([]byte(`{"v":1,"ua":"bad \x escape","ts":"2021-03-02T17:04:05Z","req":"r","host":"h","pid":1,"seq":1,"ip":"x"}`))
	seed := maphash.MakeSeed()
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		var r Record
		err := parseLine(b, &r)
		if !bytes.Equal(b, in) {
			t.Fatal("parseLine changed its input")
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
		} else {
			if r.Req == "" || r.Host == "" || r.IP == "" || r.TS == 0 && !strings.Contains(string(b), "1970-01-01T00:00:00") {
				t.Fatalf("accepted a line without its required fields: %+v", r)
			}
			if r.Line != string(b) {
				t.Fatal("Record.Line is not the line")
			}
			// Where encoding/json reads the same bytes as an object, the
			// string fields agree (invalid UTF-8 aside: encoding/json
			// replaces it, the scanner quotes lines as they are).
			var m map[string]any
			if utf8.Valid(b) && json.Unmarshal(b, &m) == nil {
				for k, got := range map[string]string{"req": r.Req, "host": r.Host, "ip": r.IP, "ua": r.UA, "path": r.Path, "sid_in": r.SidIn, "uid_in": r.UidIn, "sid_out": r.SidOut, "uid_out": r.UidOut, "uid_view": r.UidView} {
					if v, ok := m[k].(string); ok && v != got {
						t.Fatalf("field %s: scanner read %q, encoding/json %q", k, got, v)
					}
				}
			}
		}
		// The workers' view of the same bytes as a chunk: one line, or
		// several when the input holds newlines.
		batch := parseChunk(append(bytes.Clone(b), '\n'), nil, seed, nil, nil)
		if len(batch.recs)+len(batch.bad) == 0 && len(bytes.TrimSpace(b)) > 0 {
			t.Fatal("a non-blank chunk gave neither records nor malformed lines")
		}
		for i := 1; i < len(batch.order); i++ {
			if batch.order[i].TS < batch.order[i-1].TS {
				t.Fatal("chunk records not in time order")
			}
		}
	})
}

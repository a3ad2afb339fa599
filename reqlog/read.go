package reqlog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ReadLines reads a request log (JSON Lines, gzip-compressed or not) and
// returns its lines in order. Blank lines are skipped; unknown fields are
// ignored, as the schema asks of readers. A line that is not a JSON object
// fails with an error naming its line number. It uses encoding/json and
// reads everything into memory: it is meant for tests and small tools.
func ReadLines(r io.Reader) ([]Line, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reqlog: read: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	var lines []Line
	for n := 1; ; n++ {
		b, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			var l Line
			if jerr := json.Unmarshal(b, &l); jerr != nil {
				return lines, fmt.Errorf("reqlog: read: line %d: %w", n, jerr)
			}
			lines = append(lines, l)
		}
		if errors.Is(err, io.EOF) {
			return lines, nil
		}
		if err != nil {
			return lines, fmt.Errorf("reqlog: read: line %d: %w", n, err)
		}
	}
}

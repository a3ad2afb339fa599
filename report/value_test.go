package report

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

type lazyString func() string

func (l lazyString) String() string { return l() }

type counter struct{ n int }

func (c *counter) String() string { return fmt.Sprintf("count=%d", c.n) }

type panicky struct{}

func (*panicky) String() string { panic("boom") }

type point struct{ X, Y int }

type named string

func TestSnapshotAccepts(t *testing.T) {
	ts := time.Date(2021, 3, 2, 17, 4, 5, 0, time.UTC)
	s := "hello"
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"nil", nil, nil},
		{"string", "x", "x"},
		{"named string", named("y"), "y"},
		{"bool", true, true},
		{"int", 7, int64(7)},
		{"int8", int8(-3), int64(-3)},
		{"uint16", uint16(9), uint64(9)},
		{"float32", float32(1.5), float64(1.5)},
		{"NaN", math.NaN(), "NaN"},
		{"+Inf", math.Inf(1), "+Inf"},
		{"time", ts, ts},
		{"duration via Stringer", 1500 * time.Millisecond, "1.5s"},
		{"bytes", []byte("abc"), "abc"},
		{"pointer", &s, "hello"},
		{"nil pointer", (*string)(nil), nil},
		{"error", errors.New("query timeout"), "query timeout"},
		{"slice", []int{1, 2}, []any{int64(1), int64(2)}},
		{"array", [2]string{"a", "b"}, []any{"a", "b"}},
		{"map", map[string]int{"a": 1}, map[string]any{"a": int64(1)}},
		{"nested", map[string]any{"l": []any{map[string]bool{"ok": true}}},
			map[string]any{"l": []any{map[string]any{"ok": true}}}},
		{"secret key redacted", map[string]any{"user": "u1", "X-Auth-Token": "abc", "inner": map[string]string{"password": "pw"}},
			map[string]any{"user": "u1", "X-Auth-Token": Redacted, "inner": map[string]any{"password": Redacted}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Snapshot(tt.in)
			if err != nil {
				t.Fatalf("Snapshot(%v): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Snapshot(%#v) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestSnapshotRefuses(t *testing.T) {
	cyc := map[string]any{}
	cyc["self"] = cyc
	x := 1
	tests := []struct {
		name string
		in   any
	}{
		{"func", func() string { return "lazy" }},
		{"func with String method", lazyString(func() string { return "lazy" })},
		{"func in a map", map[string]any{"cb": func() {}}},
		{"chan", make(chan int)},
		{"unsafe pointer", unsafe.Pointer(&x)},
		{"struct", point{1, 2}},
		{"int keys", map[int]string{1: "a"}},
		{"complex", complex(1, 2)},
		{"cycle", cyc},
		{"panicking String", &panicky{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Snapshot(tt.in)
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Snapshot(%T) = %#v, %v; want ErrUnsupported", tt.in, got, err)
			}
		})
	}
}

func TestSnapshotIsACopyTakenNow(t *testing.T) {
	m := map[string]any{"list": []string{"a"}}
	c := &counter{n: 1}
	b := []byte("before")
	got, err := Snapshot(map[string]any{"m": m, "c": c, "b": b})
	if err != nil {
		t.Fatal(err)
	}
	m["list"] = []string{"changed"}
	m["new"] = 1
	c.n = 2
	copy(b, "AFTER!")
	want := map[string]any{"m": map[string]any{"list": []any{"a"}}, "c": "count=1", "b": "before"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot changed with its source: %#v", got)
	}
}

func TestSecretKey(t *testing.T) {
	for k, want := range map[string]bool{
		"token": true, "X-Auth-Token": true, "Set-Cookie": true, "session_id": true,
		"PASSWORD": true, "pwd": true, "auth": true, "Authorization": true, "api_key": true,
		"client_secret": true, "credentials": true,
		"user": false, "author": false, "path": false, "session_fingerprint": false, "sid_fp": false,
	} {
		if got := SecretKey(k); got != want {
			t.Errorf("SecretKey(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestScrub(t *testing.T) {
	sec := []string{"tok_0123456789", "short"}
	got := scrub("cookie tok_0123456789 and short", sec)
	if strings.Contains(got, "tok_0123456789") || !strings.Contains(got, "short") {
		t.Fatalf("scrub = %q", got)
	}
}

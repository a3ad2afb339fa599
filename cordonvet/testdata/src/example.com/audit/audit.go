// Package audit is a process-wide audit recorder, for the corpus.
package audit

// Recorder keeps named probes for the life of the process.
type Recorder struct{ probes map[string]func() string }

func (r *Recorder) Register(name string, fn func() string) {}
func (r *Recorder) Count(path string)                      {}

// Sink is the process-wide recorder.
var Sink = &Recorder{}

// LastSeen and LastPath are what the debug page shows.
var (
	LastSeen any
	LastPath string
)

// State is process-wide state behind an accessor.
type State struct {
	Last  any
	Paths []string
}

var state State

// Default returns the process-wide state.
func Default() *State { return &state }

package scope

// framePCs fills pcs with the return addresses of the physical frames above
// its caller, by walking the frame pointers (framepc_amd64.s), and returns
// how many it found. It costs a few instructions per frame, where
// runtime.Callers costs thousands: it reads no unwind tables. The pcs are
// symbolized only when an error needs them (runtime.CallersFrames expands
// inlined calls then).
//
//go:noescape
func framePCs(pcs []uintptr) int

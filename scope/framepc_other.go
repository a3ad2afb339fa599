//go:build !amd64

package scope

import "runtime"

// framePCs fills pcs with the return addresses of the frames above its
// caller (runtime.Callers: the portable, slower way).
//
//go:noinline
func framePCs(pcs []uintptr) int { return runtime.Callers(3, pcs) }

#include "textflag.h"

// func framePCs(pcs []uintptr) int
//
// It walks the frame-pointer chain from its caller's frame: pcs[0] is the
// return address into the caller's caller, pcs[1] the one above that, and
// so on. It keeps no frame of its own (BP stays its caller's).
TEXT ·framePCs(SB), NOSPLIT|NOFRAME, $0-32
	MOVQ pcs_base+0(FP), DI
	MOVQ pcs_len+8(FP), CX
	XORQ AX, AX
	MOVQ BP, DX
loop:
	CMPQ AX, CX
	JGE  done
	TESTQ DX, DX
	JZ   done
	MOVQ 8(DX), BX
	TESTQ BX, BX
	JZ   done
	MOVQ BX, (DI)(AX*8)
	MOVQ 0(DX), DX
	INCQ AX
	JMP  loop
done:
	MOVQ AX, ret+24(FP)
	RET

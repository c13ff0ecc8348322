; pv_input.s — read_console for a paravirtualized ring-1 kernel: the contract of input.s, but
; through `console_io` read hypercalls (docs/paravirtual-abi.md) instead of polling the console
; ports, which are privileged in ring 1.  A paravirtual port includes it where its native kernel
; includes input.s.  Needs pv.s.
;
; read_console(r1 = buffer, r2 = capacity): take all the waiting console input into the buffer;
; bytes beyond the capacity are read and dropped.  r1 = the number of bytes that were waiting
; (compare with the capacity to detect overflow).  Clobbers r1..r5.

PVI_DROP        = 16                    ; bytes a read beyond the capacity takes at a time

read_console:
        push    r6
        push    r7
        mov     r6, r1                  ; the buffer
        mov     r7, r2                  ; its capacity
        li      r5, 0                   ; bytes taken so far
.next:  cmp     r5, r7
        jae     .drop
        add     r1, r6, r5
        sub     r2, r7, r5
        jmp     .read
.drop:  li      r1, pvi_drop
        li      r2, PVI_DROP
.read:  call    hyp_console_read        ; r1 = bytes moved, 0 when none is waiting (r5 kept)
        cmpi    r1, 0
        jle     .done                   ; (a negative errno cannot happen with these buffers)
        add     r5, r5, r1
        jmp     .next
.done:  mov     r1, r5
        pop     r7
        pop     r6
        ret

        .data
pvi_drop:       .space  PVI_DROP
        .text

; fmt.s — format a line into out_buf (shared by ptbench.s and pv.s: the native kernel prints
; it with `out`, the paravirtual one hands it to the console_io hypercall in one call).
; Memory only: runs in any ring.
;
;   fmt_reset()                  out_len = 0.                              clobbers: r1, r2
;   fmt_char(r1 = byte)          append a byte (dropped once OUT_MAX full). clobbers: r2, r3
;   fmt_str(r1 = string)         append a NUL-terminated string.           clobbers: r1..r4
;   fmt_dec(r1 = value)          append unsigned decimal.                  clobbers: r1..r6
;   fmt_hex(r1 = value)          append "0x" and 8 lowercase hex digits.   clobbers: r1..r6
;   fmt_summary()                the summary line (below).                 clobbers: r1..r6
;
; The summary line, the same from both kernels for the same input:
;   ptbench: n=<N> tables=<T> checksum=<hex> touched=<K>
; N mappings in T page tables; checksum = the sum (mod 2^32) of the N mapped pseudo-physical
; frame addresses, as the entries were built; K = pages written and read back correctly through
; the new address space (0 without `touch`).

OUT_MAX         = 160

fmt_reset:
        li      r1, out_len
        li      r2, 0
        st      [r1], r2
        ret

fmt_char:
        li      r2, out_len
        ld      r3, [r2]
        cmpi    r3, OUT_MAX
        jae     .full
        addi    r3, r3, 1
        st      [r2], r3
        li      r2, out_buf - 1
        add     r2, r2, r3
        stb     [r2], r1
.full:  ret

fmt_str:
        mov     r4, r1
.loop:  ldb     r1, [r4]
        cmpi    r1, 0
        jz      .done
        call    fmt_char
        addi    r4, r4, 1
        jmp     .loop
.done:  ret

fmt_dec:
        mov     r5, r1
        li      r6, 0                   ; digits pushed
.div:   li      r4, 10
        remu    r1, r5, r4
        divu    r5, r5, r4
        addi    r1, r1, '0'
        push    r1
        addi    r6, r6, 1
        cmpi    r5, 0
        jnz     .div
.emit:  pop     r1
        call    fmt_char
        addi    r6, r6, -1
        cmpi    r6, 0
        jnz     .emit
        ret

fmt_hex:
        mov     r5, r1
        li      r1, '0'
        call    fmt_char
        li      r1, 'x'
        call    fmt_char
        li      r6, 28
.loop:  shr     r1, r5, r6
        andi    r1, r1, 0xF
        cmpi    r1, 10
        jb      .digit
        addi    r1, r1, 'a' - 10
        jmp     .emit
.digit: addi    r1, r1, '0'
.emit:  call    fmt_char
        addi    r6, r6, -4
        cmpi    r6, 0
        jge     .loop
        ret

fmt_summary:
        call    fmt_reset
        li      r1, msg_sum_n
        call    fmt_str
        li      r1, param_n
        ld      r1, [r1]
        call    fmt_dec
        li      r1, msg_sum_tables
        call    fmt_str
        li      r1, res_tables
        ld      r1, [r1]
        call    fmt_dec
        li      r1, msg_sum_checksum
        call    fmt_str
        li      r1, res_checksum
        ld      r1, [r1]
        call    fmt_hex
        li      r1, msg_sum_touched
        call    fmt_str
        li      r1, res_touched
        ld      r1, [r1]
        call    fmt_dec
        li      r1, '\n'
        call    fmt_char
        ret

msg_sum_n:        .asciz  "ptbench: n="
msg_sum_tables:   .asciz  " tables="
msg_sum_checksum: .asciz  " checksum="
msg_sum_touched:  .asciz  " touched="
        .align  4

        .data
res_tables:     .word   0
res_checksum:   .word   0
res_touched:    .word   0
out_len:        .word   0
out_buf:        .space  OUT_MAX
        .align  4
        .text

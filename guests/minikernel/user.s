; user.s — the ring-3 side: two tasks and their small library.
;
; This text is assembled inside the kernel image (between user_image and user_image_end) but
; RUNS at UTEXT_BASE, where the kernel maps the same frames (PL3, read-only) into each task's
; address space. Branches and calls are pc-relative, so they work unchanged; an address of
; user data must be translated: write  `li rX, label + UOFF`.
; Nothing here may touch the kernel: only `int 0x80` crosses over (see layout.s for the ABI).
;
; User calling convention: as for guests/lib (args r1..r4, result r1, r8..r14 preserved).

A_ROUNDS        = 12
B_ROUNDS        = 10
DELAY           = 60            ; busy-loop iterations between prints (3 instructions each)

; --- task A: prints "A0 A1 ...", hits a breakpoint, exits -------------------------------
task_a:
        li      r8, 0
.loop:  li      r1, 'A'
        mov     r2, r8
        call    u_tag
        call    u_delay
        addi    r8, r8, 1
        cmpi    r8, A_ROUNDS
        jl      .loop
        brk                             ; #BP: the kernel reports it and resumes here
        li      r1, SYS_GETPID
        int     0x80
        mov     r2, r1
        li      r1, ua_done + UOFF
        call    u_say                   ; "A: done, I am task 1"
        li      r1, SYS_EXIT
        li      r2, 0
        int     0x80
.hang:  jmp     .hang                   ; not reached

; --- task B: prints "B0 B1 ...", reads a disk sector, tries bad pointers, then touches
; --- kernel memory and gets killed ------------------------------------------------------
task_b:
        li      r8, 0
.loop:  li      r1, 'B'
        mov     r2, r8
        call    u_tag
        call    u_delay
        addi    r8, r8, 1
        cmpi    r8, B_ROUNDS
        jl      .loop
        li      r1, SYS_YIELD           ; give the rest of this time slice away
        int     0x80
        ; read_sector(1, buffer on our stack)
        addi    sp, sp, -SECTOR_SIZE
        mov     r9, sp                  ; r9 = sector buffer
        li      r1, SYS_READ_SECTOR
        li      r2, 1
        mov     r3, r9
        int     0x80
        cmpi    r1, 0
        jl      .rderr
        ; one line, one write:  B: sector 1 says "<text up to the first newline, max 64>"
        addi    sp, sp, -128
        mov     r10, sp                 ; r10 = line buffer
        mov     r1, r10
        li      r2, ub_read + UOFF
        call    u_strcpy                ; r1 = end
        li      r2, 0
.scan:  cmpi    r2, 64
        jge     .close
        add     r3, r9, r2
        ldb     r3, [r3]
        cmpi    r3, '\n'
        jz      .close
        cmpi    r3, 0
        jz      .close
        stb     [r1], r3
        addi    r1, r1, 1
        addi    r2, r2, 1
        jmp     .scan
.close: li      r2, ub_quote + UOFF
        call    u_strcpy
        sub     r2, r1, r10
        mov     r1, r10
        call    u_write
        addi    sp, sp, 128
        jmp     .badptr
.rderr: mov     r2, r1
        li      r1, ub_rderr + UOFF
        call    u_say
.badptr:
        ; the kernel must refuse pointers outside our mappings, not crash
        li      r1, SYS_READ_SECTOR
        li      r2, 1
        li      r3, KERNEL_PROBE
        int     0x80
        mov     r2, r1
        li      r1, ub_bad1 + UOFF
        call    u_say
        li      r1, SYS_WRITE
        li      r2, KERNEL_PROBE
        li      r3, 16
        int     0x80
        mov     r2, r1
        li      r1, ub_bad2 + UOFF
        call    u_say
        li      r1, SYS_READ_SECTOR     ; and our own read-only text is not a valid target
        li      r2, 1
        li      r3, UTEXT_BASE
        int     0x80
        mov     r2, r1
        li      r1, ub_bad3 + UOFF
        call    u_say
        ; now read kernel memory directly: a PL0 page from ring 3 -> #PF, the kernel kills us
        li      r1, ub_touch + UOFF
        call    u_puts
        li      r2, KERNEL_PROBE
        ld      r1, [r2]
        li      r1, SYS_EXIT            ; not reached
        li      r2, 99
        int     0x80
.hang:  jmp     .hang

; --- user library ----------------------------------------------------------------------

; u_write(r1 = buf, r2 = len) -> r1 = result of SYS_WRITE             clobbers: r1..r3
u_write:
        mov     r3, r2
        mov     r2, r1
        li      r1, SYS_WRITE
        int     0x80
        ret

; u_puts(r1 = string)                                                 clobbers: r1..r3
u_puts:
        mov     r2, r1
.len:   ldb     r3, [r2]
        cmpi    r3, 0
        jz      .go
        addi    r2, r2, 1
        jmp     .len
.go:    sub     r2, r2, r1
        jmp     u_write

; u_fmt_dec(r1 = signed value, r2 = dst) -> r1 = end of the digits    clobbers: r1..r5
u_fmt_dec:
        cmpi    r1, 0
        jge     .pos
        li      r3, '-'
        stb     [r2], r3
        addi    r2, r2, 1
        neg     r1, r1
.pos:   li      r4, 10
        li      r5, 0
.div:   remu    r3, r1, r4
        divu    r1, r1, r4
        addi    r3, r3, '0'
        push    r3
        addi    r5, r5, 1
        cmpi    r1, 0
        jnz     .div
.emit:  pop     r3
        stb     [r2], r3
        addi    r2, r2, 1
        addi    r5, r5, -1
        cmpi    r5, 0
        jnz     .emit
        mov     r1, r2
        ret

; u_strcpy(r1 = dst, r2 = NUL-terminated src) -> r1 = end of the copy (no NUL written)
;                                                                     clobbers: r1..r3
u_strcpy:
        ldb     r3, [r2]
        cmpi    r3, 0
        jz      .done
        stb     [r1], r3
        addi    r1, r1, 1
        addi    r2, r2, 1
        jmp     u_strcpy
.done:  ret

; u_say(r1 = string, r2 = signed value): prints "<string><value>\n" with ONE write, so the
; line cannot be split by a preemption. The string must be under 80 bytes.
;                                                                     clobbers: r1..r6
u_say:
        addi    sp, sp, -96
        mov     r6, r2
        mov     r2, r1
        mov     r1, sp
        call    u_strcpy
        mov     r2, r1
        mov     r1, r6
        call    u_fmt_dec
        li      r3, '\n'
        stb     [r1], r3
        addi    r1, r1, 1
        sub     r2, r1, sp
        mov     r1, sp
        call    u_write
        addi    sp, sp, 96
        ret

; u_tag(r1 = letter, r2 = n): prints "<letter><n> " with ONE write, so that preemption
; can never split a token.                                            clobbers: r1..r5
u_tag:
        addi    sp, sp, -16
        stb     [sp], r1
        mov     r1, r2
        addi    r2, sp, 1
        call    u_fmt_dec
        li      r3, ' '
        stb     [r1], r3
        addi    r1, r1, 1
        sub     r2, r1, sp
        mov     r1, sp
        call    u_write
        addi    sp, sp, 16
        ret

; u_delay(): burn DELAY*3 instructions                                clobbers: r3
u_delay:
        li      r3, DELAY
.loop:  addi    r3, r3, -1
        cmpi    r3, 0
        jnz     .loop
        ret

; --- user strings (read through the user mapping: always use label + UOFF) ----------------
ua_done:        .asciz  "A: done, I am task "
ub_read:        .asciz  "B: sector 1 says \""
ub_quote:       .asciz  "\"\n"
ub_rderr:       .asciz  "B: read_sector(1) failed: "
ub_bad1:        .asciz  "B: read_sector(1, kernel address 0x1000) -> "
ub_bad2:        .asciz  "B: write(kernel address 0x1000, 16) -> "
ub_bad3:        .asciz  "B: read_sector(1, read-only user text) -> "
ub_touch:       .asciz  "B: now reading kernel memory at 0x1000 directly...\n"

; --- the user-program hook of toyvisor.testing (docs/testing-isolation.md) --------------------
; `toyvisor check` runs a generated program as task 1: it writes the program's code at
; user_program (the free rest of this page), points task 1's entry word (user_program_entry, in
; kernel.s) at user_program_va and ends the program with a jump to user_program_exit.  A normal
; boot never runs anything below.
        .align  4
user_program_exit:
        li      r1, SYS_EXIT
        li      r2, 0
        int     0x80
user_program:
user_program_end = user_image_end
user_program_va = user_program + UOFF

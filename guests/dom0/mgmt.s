; mgmt.s — dom0's management part (docs/paravirtualization.md, "Domains"): Xen's toolstack
; commands, read from the REAL console input and carried out with domctl hypercalls.
;
; At boot (mgmt_init, after the back-ends mapped their rings) dom0 reads every byte the real
; console offers (physdev_op in PORT_CONSOLE_STATUS / PORT_CONSOLE_DATA); each line is one
; command:
;
;   [@T] list                 domctl list: one line per domain {id, state, pages}
;   [@T] pause ID             domctl pause
;   [@T] unpause ID           domctl unpause
;   [@T] balloon ID PAGES     domctl balloon: the domain's new page count
;   [@T] destroy ID           disconnect the back-ends (flush, unmap the rings), domctl destroy
;
; A command runs when the system time (shared_info.system_time: machine ticks) has reached T
; (no @T: at once); commands run in the order given (a later command waits for the earlier
; ones). While a command waits, dom0 polls with sched_op yield instead of sleeping with
; sched_op block. When no domU is left running, the commands still waiting run before dom0
; shuts down. Only the first letter of the command word is looked at (the toolstack in
; tools/domains.py validated the whole syntax). Results go to the real console, one line each,
; prefixed "[dom0] " (numbers in decimal, errors as the negative error code and its errno
; name, "error -22 EINVAL"; the hypervisor's log says why: `toyvisor domains boot` prints it).
;
;   mgmt_init()   parse the commands, note the ring grant handles, run what is due.
;   mgmt_wait()   run what is due; then sched_op yield if commands wait, else sched_op block.
;   mgmt_flush()  run every command still waiting.
; They clobber r1..r14 (kernel.s calls them where it holds nothing in registers).

MG_MAX          = 16                    ; commands
MG_SIZE         = 16                    ; {time, op, a, b}
MG_TIME         = 0
MG_OP           = 4
MG_A            = 8
MG_B            = 12
MG_LINE_MAX     = 64

mgmt_init:
        li      r9, mg_handles          ; the rings' grant handles: the VMM hands out the lowest
        li      r11, conns              ; free handle, and the back-ends mapped, in record order,
        li      r10, nconn              ; each console ring then its block ring
        ld      r10, [r10]
        li      r12, 0
.h:     cmpi    r10, 0
        jz      .read
        st      [r9], r12
        addi    r12, r12, 1
        li      r1, -1
        st      [r9 + 4], r1
        ld      r1, [r11 + C_BRING]
        cmpi    r1, 0
        jz      .hn
        st      [r9 + 4], r12
        addi    r12, r12, 1
.hn:    addi    r9, r9, 8
        addi    r11, r11, C_SIZE
        addi    r10, r10, -1
        jmp     .h
.read:  li      r13, 0                  ; bytes in the line buffer
.byte:  li      r1, PHYSDEVOP_in
        li      r2, PORT_CONSOLE_STATUS
        li      r3, 0
        call    hyp_physdev_op
        cmpi    r1, 1
        jnz     .eof
        li      r1, PHYSDEVOP_in
        li      r2, PORT_CONSOLE_DATA
        li      r3, 0
        call    hyp_physdev_op
        cmpi    r1, '\n'
        jz      .eol
        cmpi    r13, MG_LINE_MAX - 1
        jae     .byte                   ; too long: the rest of the line is dropped
        li      r2, mg_line
        add     r2, r2, r13
        stb     [r2], r1
        addi    r13, r13, 1
        jmp     .byte
.eol:   call    mg_parse_line
        li      r13, 0
        jmp     .byte
.eof:   cmpi    r13, 0
        jz      .due
        call    mg_parse_line
.due:   jmp     mg_run_due

; mg_parse_line(r13 = length of mg_line): append the command to mg_cmds (blank: ignored)
mg_parse_line:
        li      r2, mg_line
        add     r3, r2, r13
        li      r1, 0
        stb     [r3], r1                ; NUL-terminate
        li      r1, mg_ncmd
        ld      r1, [r1]
        cmpi    r1, MG_MAX
        jae     .ret
        shli    r1, r1, 4
        li      r10, mg_cmds
        add     r10, r10, r1            ; r10 = the new entry
        li      r1, 0
        st      [r10 + MG_TIME], r1
        st      [r10 + MG_A], r1
        st      [r10 + MG_B], r1
        call    mg_skip_spaces
        ldb     r1, [r2]
        cmpi    r1, 0
        jz      .ret
        cmpi    r1, '@'
        jnz     .word
        addi    r2, r2, 1
        call    mg_number
        st      [r10 + MG_TIME], r1
        call    mg_skip_spaces
.word:  ldb     r1, [r2]
        st      [r10 + MG_OP], r1
.letters:
        ldb     r1, [r2]                ; skip the command word
        cmpi    r1, 'a'
        jb      .args
        addi    r2, r2, 1
        jmp     .letters
.args:  call    mg_skip_spaces
        call    mg_number
        st      [r10 + MG_A], r1
        call    mg_skip_spaces
        call    mg_number
        st      [r10 + MG_B], r1
        li      r1, mg_ncmd
        ld      r3, [r1]
        addi    r3, r3, 1
        st      [r1], r3
.ret:   ret

mg_skip_spaces:                         ; r2 = cursor                        clobbers: r1
        ldb     r1, [r2]
        cmpi    r1, ' '
        jnz     .done
        addi    r2, r2, 1
        jmp     mg_skip_spaces
.done:  ret

mg_number:                              ; r2 = cursor -> r1 = decimal value  clobbers: r3, r4
        li      r1, 0
        li      r4, 10
.digit: ldb     r3, [r2]
        cmpi    r3, '0'
        jb      .done
        cmpi    r3, '9'
        ja      .done
        mul     r1, r1, r4
        addi    r3, r3, -'0'
        add     r1, r1, r3
        addi    r2, r2, 1
        jmp     .digit
.done:  ret

; mgmt_wait(): run what is due; yield while commands wait, else block.
mgmt_wait:
        call    mg_run_due
        li      r1, mg_next
        ld      r1, [r1]
        li      r2, mg_ncmd
        ld      r2, [r2]
        cmp     r1, r2
        jb      .poll
        jmp     hyp_block
.poll:  jmp     hyp_yield

; mgmt_flush(): every command still waiting, now.
mgmt_flush:
        li      r1, mg_now_all
        li      r2, 1
        st      [r1], r2
        jmp     mg_run_due

; mg_run_due(): run the commands, in order, whose time has come.
mg_run_due:
.next:  li      r1, mg_next
        ld      r2, [r1]
        li      r3, mg_ncmd
        ld      r3, [r3]
        cmp     r2, r3
        jae     .done
        shli    r3, r2, 4
        li      r10, mg_cmds
        add     r10, r10, r3
        li      r3, mg_now_all
        ld      r3, [r3]
        cmpi    r3, 0
        jnz     .go
        li      r3, shared
        ld      r3, [r3]
        ld      r3, [r3 + SH_SYSTEM_TIME]
        ld      r4, [r10 + MG_TIME]
        cmp     r3, r4
        jb      .done
.go:    addi    r2, r2, 1
        st      [r1], r2
        call    mg_execute
        jmp     .next
.done:  ret

; mg_execute(r10 = command)
mg_execute:
        ld      r1, [r10 + MG_OP]
        cmpi    r1, 'd'
        jz      mg_destroy              ; it prints the domain's partial line first
        li      r1, s_prefix
        call    mg_puts
        ld      r1, [r10 + MG_OP]
        cmpi    r1, 'l'
        jz      mg_list
        cmpi    r1, 'p'
        jz      .pause
        cmpi    r1, 'u'
        jz      .unpause
        cmpi    r1, 'b'
        jz      .balloon
        li      r1, s_bad
        call    mg_puts
        jmp     mg_nl
.pause: li      r1, s_pause
        li      r2, DOMCTL_pause
        jmp     .one
.unpause:
        li      r1, s_unpause
        li      r2, DOMCTL_unpause
.one:   push    r2
        call    mg_puts
        ld      r1, [r10 + MG_A]
        call    mg_putn
        pop     r1
        ld      r2, [r10 + MG_A]
        li      r3, 0
        call    hyp_domctl
        jmp     mg_result
.balloon:
        li      r1, s_balloon
        call    mg_puts
        ld      r1, [r10 + MG_A]
        call    mg_putn
        li      r1, ' '
        call    mg_putc
        ld      r1, [r10 + MG_B]
        call    mg_putn
        li      r1, DOMCTL_balloon
        ld      r2, [r10 + MG_A]
        ld      r3, [r10 + MG_B]
        call    hyp_domctl
        cmpi    r1, 0
        jl      mg_result
        push    r1
        li      r1, s_colon
        call    mg_puts
        pop     r1
        call    mg_putn
        li      r1, s_pages
        call    mg_puts
        jmp     mg_nl

; mg_result(r1 = hypercall result): ": ok" or ": error <code>", newline
mg_result:
        cmpi    r1, 0
        jl      .err
        li      r1, s_ok
        call    mg_puts
        jmp     mg_nl
.err:   push    r1
        li      r1, s_error
        call    mg_puts
        ld      r1, [sp]
        neg     r1, r1
        push    r1
        li      r1, '-'
        call    mg_putc
        pop     r1
        call    mg_putn
        pop     r1
        call    mg_errno
mg_nl:  li      r1, '\n'
        jmp     mg_putc

mg_list:
        li      r1, s_list
        call    mg_puts
        li      r1, DOMCTL_list
        li      r2, mg_domlist
        li      r3, MAX_BACKENDS + 1
        call    hyp_domctl
        cmpi    r1, 0
        jl      mg_result
        mov     r12, r1
        call    mg_putn
        li      r1, s_domains
        call    mg_puts
        li      r13, mg_domlist
.rec:   cmpi    r12, 0
        jz      .done
        li      r1, s_prefix
        call    mg_puts
        li      r1, s_indent
        call    mg_puts
        ld      r1, [r13]
        call    mg_putn
        li      r1, ' '
        call    mg_putc
        ld      r1, [r13 + 4]           ; state code -> name (4 words apart)
        andi    r1, r1, 3
        shli    r1, r1, 2
        li      r2, s_states
        add     r1, r1, r2
        ld      r1, [r1]
        call    mg_puts
        li      r1, ' '
        call    mg_putc
        ld      r1, [r13 + 8]
        call    mg_putn
        li      r1, s_pages
        call    mg_puts
        call    mg_nl
        addi    r13, r13, 16
        addi    r12, r12, -1
        jmp     .rec
.done:  ret

; mg_destroy(r10 = command): the back-ends let go of the domain first (its partial console
; line is printed, its rings unmapped, its connection removed from the table: serve_* never
; touch it again), then domctl destroy.
mg_destroy:
        li      r11, conns              ; find the connection
        li      r9, mg_handles
        li      r12, nconn
        ld      r12, [r12]
        li      r13, 0                  ; index
.find:  cmp     r13, r12
        jae     .destroy
        ld      r1, [r11 + C_DOMID]
        ld      r2, [r10 + MG_A]
        cmp     r1, r2
        jz      .found
        addi    r11, r11, C_SIZE
        addi    r9, r9, 8
        addi    r13, r13, 1
        jmp     .find
.found: ld      r1, [r11 + C_LEN]      ; its partial line, ended here
        push    r1
        call    flush_line
        pop     r1
        cmpi    r1, 0
        jz      .unmap
        call    mg_nl
.unmap:        ld      r1, [r9]
        call    hyp_grant_unmap
        ld      r1, [r9 + 4]
        cmpi    r1, 0
        jl      .shift
        call    hyp_grant_unmap
.shift: addi    r13, r13, 1             ; move the later connections (and handles) down one
        cmp     r13, r12
        jae     .drop
        mov     r1, r11
        addi    r2, r11, C_SIZE
        li      r3, C_SIZE
        call    mg_move
        mov     r1, r9
        addi    r2, r9, 8
        li      r3, 8
        call    mg_move
        addi    r11, r11, C_SIZE
        addi    r9, r9, 8
        jmp     .shift
.drop:  li      r1, nconn
        addi    r12, r12, -1
        st      [r1], r12
.destroy:
        li      r1, s_prefix
        call    mg_puts
        li      r1, s_destroy
        call    mg_puts
        ld      r1, [r10 + MG_A]
        call    mg_putn
        li      r1, DOMCTL_destroy
        ld      r2, [r10 + MG_A]
        li      r3, 0
        call    hyp_domctl
        jmp     mg_result

mg_move:                                ; copy r3 bytes (a multiple of 4) from r2 to r1
        cmpi    r3, 0
        jz      .done
        ld      r4, [r2]
        st      [r1], r4
        addi    r1, r1, 4
        addi    r2, r2, 4
        addi    r3, r3, -4
        jmp     mg_move
.done:  ret

; real-console output through physdev_op (dom0 is the only domain allowed to do it)
mg_errno:                               ; r1 = error code: " EINVAL" if named  clobbers: r1..r7
        li      r7, mg_errnos
.next:  ld      r2, [r7]
        cmpi    r2, 0
        jz      .none
        cmp     r2, r1
        jz      .found
        addi    r7, r7, 8
        jmp     .next
.found: li      r1, ' '
        call    mg_putc
        ld      r1, [r7 + 4]
        jmp     mg_puts
.none:  ret

mg_putc:                                ; r1 = byte                          clobbers: r1..r4
        mov     r3, r1
        li      r1, PHYSDEVOP_out
        li      r2, PORT_CONSOLE_DATA
        jmp     hyp_physdev_op

mg_puts:                                ; r1 = NUL-terminated string         clobbers: r1..r5
        mov     r5, r1
.c:     ldb     r1, [r5]
        cmpi    r1, 0
        jz      .done
        call    mg_putc
        addi    r5, r5, 1
        jmp     .c
.done:  ret

mg_putn:                                ; r1 = unsigned, in decimal          clobbers: r1..r6
        li      r5, mg_digits + 11
        li      r2, 0
        stb     [r5], r2
        li      r6, 10
.d:     addi    r5, r5, -1
        remu    r2, r1, r6
        addi    r2, r2, '0'
        stb     [r5], r2
        divu    r1, r1, r6
        cmpi    r1, 0
        jnz     .d
        mov     r1, r5
        jmp     mg_puts

        .data
        .align  4
mg_ncmd:        .word   0
mg_next:        .word   0
mg_now_all:     .word   0
mg_handles:     .space  MAX_BACKENDS * 8        ; {console handle, block handle or -1}
mg_cmds:        .space  MG_MAX * MG_SIZE
mg_domlist:     .space  (MAX_BACKENDS + 1) * 16
s_states:       .word   s_running, s_blocked, s_paused, s_shutdown
mg_line:        .space  MG_LINE_MAX
mg_digits:      .space  12
s_prefix:       .asciz  "[dom0] "
s_indent:       .asciz  "  d"
s_list:         .asciz  "list: "
s_domains:      .asciz  " domains\n"
s_pause:        .asciz  "pause "
s_unpause:      .asciz  "unpause "
s_balloon:      .asciz  "balloon "
s_destroy:      .asciz  "destroy "
s_colon:        .asciz  ": "
s_pages:        .asciz  " pages"
s_ok:           .asciz  ": ok"
s_error:        .asciz  ": error "
        .align  4
mg_errnos:      .word   PV_EPERM, e_perm, PV_ENOENT, e_noent, PV_ESRCH, e_srch
                .word   PV_EAGAIN, e_again, PV_ENOMEM, e_nomem, PV_EACCES, e_acces
                .word   PV_EFAULT, e_fault, PV_EBUSY, e_busy, PV_EEXIST, e_exist
                .word   PV_EINVAL, e_inval, PV_ENOSPC, e_nospc, PV_ENOSYS, e_nosys, 0
e_perm:         .asciz  "EPERM"
e_noent:        .asciz  "ENOENT"
e_srch:         .asciz  "ESRCH"
e_again:        .asciz  "EAGAIN"
e_nomem:        .asciz  "ENOMEM"
e_acces:        .asciz  "EACCES"
e_fault:        .asciz  "EFAULT"
e_busy:         .asciz  "EBUSY"
e_exist:        .asciz  "EEXIST"
e_inval:        .asciz  "EINVAL"
e_nospc:        .asciz  "ENOSPC"
e_nosys:        .asciz  "ENOSYS"
s_bad:          .asciz  "unknown command"
s_running:      .asciz  "running"
s_blocked:      .asciz  "blocked"
s_paused:       .asciz  "paused"
s_shutdown:     .asciz  "shutdown"
        .text

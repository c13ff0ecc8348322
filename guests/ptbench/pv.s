; pv.s — the page-table-heavy benchmark, paravirtualized kernel (ring 1, docs/paravirtual-abi.md).
;
; The port of ptbench.s to the `paravirtual` VMM: the same fork-like address space — a new
; page directory sharing the kernel's tables, plus new page tables holding N mappings
; USER_BASE + i*4K -> pseudo-physical DATA_BASE + i*4K — the same switch, the same optional
; touch, the same summary line. What changes is how page tables are written: they are
; read-only to a paravirtual guest, so
;   1. the new directory and tables are zeroed while still ordinary pages, then one multicall
;      (one VMM entry) remaps them read-only (update_va_mapping), pins them (mmuext_op
;      pin_table / pin_directory) and fills the directory (mmu_update: the kernel's entries,
;      shared with the boot directory, and the links to the new tables);
;   2. the N page-table entries are mmu_update requests {machine address of the entry, entry},
;      B per mmu_update call (b=B) and M calls per multicall (m=M): one VMM entry per B*M
;      mappings, ceil(N / (B*M)) in all;
;   3. mmuext_op new_baseptr switches to the new directory; console_io prints the summary in one
;      call; sched_op shutdown ends the domain.
; Entries hold machine frames (p2m); the checksum is over the pseudo-physical frames, so the
; summary line is the native kernel's, byte for byte.
;
; Parameters: the same words as the native kernel's console input (params.s), from the kernel's
; command line: the NUL-terminated string at the symbol `cmdline`, which the domain builder
; writes into the image (toyvisor.vmm.ptbench.with_command_line; Xen passes
; start_info.cmd_line). With an empty command line dom0 reads the console input instead (with
; physdev_op, in one multicall: one more VMM entry); a domU, which cannot read device ports,
; takes the defaults (N = 256, b = 32, m = 1).
;
; Pseudo-physical memory: the image at 0, then what the VMM set up (start_info, shared_info,
; p2m, boot tables ...) up to start_info's first free pfn; the new directory and tables are the
; first free pfns; the mapped pages are pfns DATA_BASE/4K .. +N (so the domain needs
; DATA_BASE + N*4K of memory plus the VMM's stack page at the end).

        .include "layout.s"

KFLAGS          = PTE_P | PTE_W | PTE_PL1        ; the kernel's pages (ring 1)
ROFLAGS         = PTE_P | PTE_PL1                ; a page-table page, as the kernel sees it
DATA_PFN        = DATA_BASE >> 12
MC_MAX          = INPUT_MAX + 1                  ; multicall entries (>= MAX_CALLS, 3 + 2*MAX_TABLES)
REQS_MAX        = MAX_N                          ; mmu_update requests in flight (>= PV_VMM_PDE)

start:                                  ; ring 1; r1 = start_info, sp = the VMM's stack
        call    pv_start
        cmpi    r1, 0
        jnz     bad_start
        call    read_cmdline
        call    parse_params
        cmpi    r1, 0
        jnz     fail
        li      r1, trap_table
        call    hyp_set_trap_table
        cmpi    r1, 0
        jl      hyp_failed

        call    fork_space
        li      r1, MMUEXT_NEW_BASEPTR  ; activate the new address space
        li      r2, pd1_ma
        ld      r2, [r2]
        shri    r2, r2, MFN_SHIFT
        call    hyp_mmuext
        cmpi    r1, 0
        jl      hyp_failed
        li      r1, param_touch
        ld      r1, [r1]
        cmpi    r1, 0
        jz      .report
        call    touch_pages
.report:
        li      r1, param_quiet
        ld      r1, [r1]
        cmpi    r1, 0
        jnz     .halt
        call    fmt_summary
        call    print_out
.halt:  li      r1, SHUTDOWN_poweroff
        call    hyp_shutdown
.dead:  jmp     .dead

fail:   call    print_out
        jmp     start.halt

bad_start:
        li      r1, msg_bad_start
        call    puts
        jmp     crash

; hyp_failed: r1 = the (negative) result of a hypercall that should not have failed.
hyp_failed:
        mov     r8, r1
        li      r1, msg_hyp_failed
        call    puts
        mov     r1, r8
        call    putdec_s
        call    putnl
crash:  li      r1, SHUTDOWN_crash
        call    hyp_shutdown
.dead:  jmp     .dead

; read_cmdline(): the command line into input_buf / input_len; an empty one in dom0 (which
; may read device ports): the console input instead, INPUT_MAX + 1 physdev_op reads of
; PORT_CONSOLE_DATA in one multicall (one VMM entry; a result that is not a byte: no more input).
; Clobbers r1..r7.
read_cmdline:
        li      r1, cmdline
        call    strlen
        cmpi    r1, 0
        jz      .console
        mov     r3, r1
        li      r2, input_len
        st      [r2], r3
        li      r1, input_buf
        li      r2, cmdline
        call    memcpy
        ret
.console:
        li      r2, input_len
        st      [r2], r1                ; 0: nothing read (yet)
        li      r1, start_info
        ld      r1, [r1]
        ld      r1, [r1 + SI_FLAGS]
        andi    r1, r1, SIF_PRIVILEGED
        cmpi    r1, 0
        jz      .done                   ; a domU: no console input, the defaults
        call    mc_reset
        li      r7, 0
.add:   cmpi    r7, INPUT_MAX + 1
        jge     .read
        li      r1, HYPERVISOR_physdev_op
        li      r2, PHYSDEVOP_in
        li      r3, PORT_CONSOLE_DATA
        li      r4, 0
        call    mc_add
        addi    r7, r7, 1
        jmp     .add
.read:  li      r1, mc_calls
        li      r2, INPUT_MAX + 1
        call    hyp_multicall
        cmpi    r1, 0
        jl      hyp_failed
        li      r5, mc_calls
        li      r7, 0                   ; bytes
.byte:  cmpi    r7, INPUT_MAX + 1
        jge     .end
        ld      r1, [r5 + MC_RESULT]
        li      r2, 255
        cmp     r1, r2
        ja      .end                    ; not a byte (unsigned): the input is over
        cmpi    r7, INPUT_MAX
        jge     .skip                   ; the 65th byte only says "too long"
        li      r2, input_buf
        add     r2, r2, r7
        stb     [r2], r1
.skip:  addi    r7, r7, 1
        addi    r5, r5, MC_ENTRY_SIZE
        jmp     .byte
.end:   li      r2, input_len
        st      [r2], r7
.done:  ret

; print_out(): out_buf in one console_io call. Clobbers r1..r4.
print_out:
        li      r1, out_len
        ld      r2, [r1]
        li      r1, out_buf
        call    hyp_console_write
        ret

; fork_space(): the new directory and tables, through the VMM (see the top). Sets pd1_ma,
; res_tables, res_checksum. Clobbers r1..r14 (not sp).
fork_space:
        li      r8, param_n
        ld      r8, [r8]
        addi    r9, r8, 1023
        shri    r9, r9, 10              ; r9 = T, the number of new tables
        ; room: directory + tables below DATA_PFN, the mapped pages below the VMM's stack page
        li      r1, first_free
        ld      r10, [r1]               ; r10 = pfn of the new directory; tables follow it
        add     r1, r10, r9
        addi    r1, r1, 1
        li      r2, DATA_PFN
        cmp     r1, r2
        ja      .small
        add     r1, r2, r8
        li      r2, nr_pages
        ld      r2, [r2]
        addi    r2, r2, -1
        cmp     r1, r2
        ja      .small
        ; machine addresses of the new frames
        li      r1, p2m
        ld      r1, [r1]
        mov     r2, r10
        call    pv_ma
        li      r2, pd1_ma
        st      [r2], r1
        li      r11, 0                  ; j
.ma:    cmp     r11, r9
        jae     .zero
        li      r1, p2m
        ld      r1, [r1]
        add     r2, r10, r11
        addi    r2, r2, 1
        call    pv_ma
        li      r2, upt_ma
        shli    r3, r11, 2
        add     r2, r2, r3
        st      [r2], r1
        addi    r11, r11, 1
        jmp     .ma
        ; zero them while they are still ordinary writable pages (plain stores)
.zero:  li      r11, 0
.zloop: cmp     r11, r9
        ja      .prep
        add     r1, r10, r11
        shli    r1, r1, 12              ; virtual = pseudo-physical
        li      r2, 0
        li      r3, 1024
        call    memset32
        addi    r11, r11, 1
        jmp     .zloop
        ; the new directory's entries: the kernel's (every present boot entry below the VMM's
        ; area; the user area must be free) and the links to the new tables
.prep:  li      r12, reqs               ; r12 = next request
        li      r13, pd1_ma
        ld      r13, [r13]
        li      r11, 0                  ; directory index
.pde:   cmpi    r11, USER_PDI + MAX_TABLES  ; the rest, up to the VMM's hole, cannot be the
        jge     .links                  ; kernel's: it would overlap the user area (.busy)
        li      r1, boot_pd
        ld      r1, [r1]
        shli    r2, r11, 2
        add     r1, r1, r2
        ld      r3, [r1]
        andi    r1, r3, PTE_P
        cmpi    r1, 0
        jz      .nextpde
        cmpi    r11, USER_PDI
        jae     .busy
        add     r1, r13, r2
        st      [r12], r1
        st      [r12 + 4], r3
        addi    r12, r12, MMU_REQ_SIZE
.nextpde:
        addi    r11, r11, 1
        jmp     .pde
.links: li      r11, 0
.link:  cmp     r11, r9
        jae     .batch
        addi    r1, r11, USER_PDI
        shli    r1, r1, 2
        add     r1, r1, r13
        st      [r12], r1
        li      r1, upt_ma
        shli    r2, r11, 2
        add     r1, r1, r2
        ld      r1, [r1]
        ori     r1, r1, KFLAGS
        st      [r12 + 4], r1
        addi    r12, r12, MMU_REQ_SIZE
        addi    r11, r11, 1
        jmp     .link
        ; one multicall: read-only, pinned, the directory filled
.batch: call    mc_reset
        li      r1, HYPERVISOR_update_va_mapping
        shli    r2, r10, 12
        ori     r3, r13, ROFLAGS
        li      r4, UVMF_INVLPG
        call    mc_add
        li      r11, 0
.ro:    cmp     r11, r9
        jae     .pins
        li      r1, HYPERVISOR_update_va_mapping
        add     r2, r10, r11
        addi    r2, r2, 1
        shli    r2, r2, 12
        li      r3, upt_ma
        shli    r4, r11, 2
        add     r3, r3, r4
        ld      r3, [r3]
        ori     r3, r3, ROFLAGS
        li      r4, UVMF_INVLPG
        call    mc_add
        addi    r11, r11, 1
        jmp     .ro
.pins:  li      r11, 0
.pin:   cmp     r11, r9
        jae     .pindir
        li      r1, HYPERVISOR_mmuext_op
        li      r2, MMUEXT_PIN_TABLE
        li      r3, upt_ma
        shli    r4, r11, 2
        add     r3, r3, r4
        ld      r3, [r3]
        shri    r3, r3, MFN_SHIFT
        li      r4, 0
        call    mc_add
        addi    r11, r11, 1
        jmp     .pin
.pindir:
        li      r1, HYPERVISOR_mmuext_op
        li      r2, MMUEXT_PIN_DIRECTORY
        shri    r3, r13, MFN_SHIFT
        li      r4, 0
        call    mc_add
        li      r1, HYPERVISOR_mmu_update
        li      r2, reqs
        sub     r3, r12, r2
        shri    r3, r3, 3               ; count
        li      r4, 0
        call    mc_add
        call    mc_run
        ; the N entries: B requests per mmu_update, M calls per multicall
        li      r11, 0                  ; r11 = i, the next mapping
        li      r14, 0                  ; r14 = checksum
.chunk: cmp     r11, r8
        jae     .done
        li      r1, param_b
        ld      r1, [r1]
        li      r2, param_m
        ld      r2, [r2]
        mul     r10, r1, r2             ; r10 = B*M, capped to what is left
        sub     r1, r8, r11
        cmp     r10, r1
        jbe     .fill
        mov     r10, r1
.fill:  li      r12, reqs
        add     r13, r11, r10           ; r13 = end of this chunk
        li      r4, PAGE_SIZE
        shli    r5, r11, 12
        li      r1, DATA_BASE
        add     r5, r5, r1              ; r5 = pseudo-physical frame of mapping i
        li      r7, p2m
        ld      r7, [r7]
        addi    r1, r11, DATA_PFN
        shli    r1, r1, 2
        add     r7, r7, r1              ; r7 = its p2m slot
        jmp     .ptr
.req:   cmp     r11, r13
        jae     .calls
        andi    r1, r11, 1023
        cmpi    r1, 0
        jnz     .put
.ptr:   shri    r1, r11, 10             ; (first of the chunk, or of a table)
        shli    r1, r1, 2
        li      r2, upt_ma
        add     r1, r1, r2
        ld      r6, [r1]
        andi    r2, r11, 1023
        shli    r2, r2, 2
        add     r6, r6, r2              ; r6 = machine address of entry i
.put:   st      [r12], r6               ; ptr
        ld      r1, [r7]
        ori     r1, r1, KFLAGS
        st      [r12 + 4], r1           ; val: the page's machine frame
        add     r14, r14, r5            ; checksum: the pseudo-physical frame
        add     r5, r5, r4
        addi    r6, r6, 4
        addi    r7, r7, 4
        addi    r12, r12, MMU_REQ_SIZE
        addi    r11, r11, 1
        jmp     .req
.calls: call    mc_reset
        li      r12, reqs               ; r12 = first request of the next call
        shli    r13, r10, 3
        add     r13, r13, r12           ; r13 = end of the chunk's requests
.call:  cmp     r12, r13
        jae     .run
        li      r1, param_b
        ld      r3, [r1]
        sub     r1, r13, r12
        shri    r1, r1, 3               ; requests left
        cmp     r3, r1
        jbe     .add
        mov     r3, r1
.add:   li      r1, HYPERVISOR_mmu_update
        mov     r2, r12
        li      r4, 0
        shli    r5, r3, 3
        add     r12, r12, r5
        call    mc_add
        jmp     .call
.run:   call    mc_run
        jmp     .chunk
.done:  li      r1, res_tables
        st      [r1], r9
        li      r1, res_checksum
        st      [r1], r14
        ret
.small: li      r1, msg_small
        jmp     .error
.busy:  li      r1, msg_busy
.error: call    puts
        jmp     crash

; --- multicall batches ---------------------------------------------------------------------------
; mc_reset(): empty the batch.                                        clobbers: r1, r2
; mc_add(r1 = op, r2..r4 = args 1..3): append a call (args 4, 5 = 0). clobbers: r1, r5, r6
; mc_run(): issue the batch (one VMM entry); a failed call ends the domain.  clobbers: r1..r7
mc_reset:
        li      r1, mc_cur
        li      r2, mc_calls
        st      [r1], r2
        ret

mc_add:
        li      r6, mc_cur
        ld      r5, [r6]
        st      [r5 + MC_OP], r1
        st      [r5 + MC_ARG1], r2
        st      [r5 + MC_ARG2], r3
        st      [r5 + MC_ARG3], r4
        li      r1, 0
        st      [r5 + MC_ARG4], r1
        st      [r5 + MC_ARG5], r1
        li      r1, -1
        st      [r5 + MC_RESULT], r1
        addi    r5, r5, MC_ENTRY_SIZE
        st      [r6], r5
        ret

mc_run:
        li      r7, mc_calls
        li      r6, mc_cur
        ld      r6, [r6]
        sub     r2, r6, r7
        li      r3, MC_ENTRY_SIZE
        divu    r2, r2, r3
        mov     r1, r7
        call    hyp_multicall
        cmpi    r1, 0
        jl      hyp_failed
.check: cmp     r7, r6
        jae     .done
        ld      r1, [r7 + MC_RESULT]
        cmpi    r1, 0
        jl      hyp_failed
        addi    r7, r7, MC_ENTRY_SIZE
        jmp     .check
.done:  ret

; Any exception: report it and crash the domain (frame on the ring-1 stack: [sp] error code,
; [sp + 4] pc).
unexpected:
        li      r1, msg_unexpected
        call    puts
        ld      r1, [sp + 4]
        call    puthex
        li      r1, msg_errcode
        call    puts
        ld      r1, [sp]
        call    puthex
        call    putnl
        jmp     crash

        .include "touch.s"
        .include "params.s"
        .include "words.s"
        .include "fmt.s"
        .include "../lib/pv.s"
        .include "pv_console.s"
        .include "mem.s"

msg_bad_start:  .asciz  "ptbench: bad start_info\n"
msg_hyp_failed: .asciz  "ptbench: hypercall failed: "
msg_small:      .asciz  "ptbench: the domain is too small for N mappings\n"
msg_busy:       .asciz  "ptbench: the boot directory already maps the user area\n"
msg_unexpected: .asciz  "ptbench: unexpected trap at pc "
msg_errcode:    .asciz  ", error code "
        .align  4
trap_table:
        .word   VEC_DE, TRAP_DPL0, unexpected
        .word   VEC_UD, TRAP_DPL0, unexpected
        .word   VEC_GP, TRAP_DPL0, unexpected
        .word   VEC_PF, TRAP_DPL0, unexpected
        .word   VEC_AC, TRAP_DPL0, unexpected
        .word   0, 0, 0

        .data
; The command line (NUL-terminated, at most INPUT_MAX bytes): written into the image by the
; domain builder (toyvisor.vmm.ptbench.with_command_line).
cmdline:        .space  INPUT_MAX + 1
        .align  4
start_info      = pv_start_info         ; what the VMM handed us (pv_start, guests/lib/pv.s)
p2m             = pv_p2m
boot_pd         = pv_pt_base
first_free      = pv_first_free_pfn
nr_pages        = pv_nr_pages
pd1_ma:         .word   0
upt_ma:         .space  4 * MAX_TABLES
mc_cur:         .word   0
mc_calls:       .space  MC_ENTRY_SIZE * MC_MAX
reqs:           .space  MMU_REQ_SIZE * REQS_MAX
        .text

; pv_dirty.s — the paravirtual port of dirty.s: the dirty-rate migration workload as a ring-1 kernel.
;
; Input (console, console_io read): "PERIOD HOT WRITES", as dirty.s — one page
; write every PERIOD instructions (at least 16) over HOT pages (1 to MAX_HOT), WRITES in all.
; Write k stores k into word (k mod 1024) of hot page (k mod HOT); the output is the same line
; as dirty.s's: "dirty: <writes> writes over <hot> pages, checksum 0x........", then poweroff.
;
; What makes it a paravirtual workload for migration (docs/migration.md, "Paravirtual"):
; - every 8th write goes through a window page (WINDOW_VA) that the kernel first remaps onto
;   the hot page with mmu_update, so its page table changes through validated hypercalls (the
;   hypervisor's log-dirty mode must catch those writes, which are the VMM's, not the guest's);
; - mmu_update names the entry by its MACHINE address: the kernel keeps its page table's
;   machine address in r14 (read once from its page directory) — machine-frame knowledge that
;   is wrong on any other host;
; - the toolstack asks it to suspend with an event on the control channel (start_info
;   SI_CONTROL_PORT); its upcall handler calls sched_op shutdown(SHUTDOWN_suspend).  The call
;   returns 0 when the domain was resumed in a new domain (migrated: the p2m changed), 1 when
;   the suspend was cancelled; on 0 the kernel re-reads its machine frames (r14) and its control
;   port (host-local: a new one at the new host).  A kernel that ignored the 0 would hand the
;   new host's hypervisor a stale machine address at its next remap and print
;   "dirty: mmu_update refused".
; The kernel keeps no machine address in memory (the request buffer is cleared after each
; call), so its memory, canonicalized, is that of a run that never moved.

HOT_PA          = 0x10000               ; page 16 ..
RAM_END         = 0x200000              ; .. the page below the stack page (the last one)
MAX_HOT         = (RAM_END - HOT_PA) / PAGE_SIZE - 1
MIN_PERIOD      = 16
LOOP_COST       = 18                    ; instructions of one direct write, without the spin
INPUT_MAX       = 64
CHECK_STRIDE    = 60
WINDOW_INDEX    = 1000                  ; a page-table slot beyond the domain's pages
WINDOW_VA       = WINDOW_INDEX * PAGE_SIZE
WINDOW_PTE      = PTE_P | PTE_W | PTE_PL1
SI_CONTROL_PORT = 0x40                  ; toyvisor.vmm.paravirt.abi
RESUMED_NEW_DOMAIN = 0

        ; what writes.s and params.s leave to the kernel
        .macro WRITE_VIA                ; every 8th write goes through the window, remapped first
        andi    r2, r8, 7
        cmpi    r2, 0
        jnz     .store
        call    remap_window            ; r1 = WINDOW_VA, now mapping the same page
.store:
        .endm
        .macro READ_INPUT               ; console_io read, at most INPUT_MAX bytes
        call    hyp_console_read
        .endm
        .macro POWER_OFF
        li      r1, SHUTDOWN_poweroff
        call    hyp_shutdown
        .endm

start:  li      r2, start_info          ; r1 = start_info's address (the builder's)
        st      [r2], r1
        ld      r3, [r1 + SI_SHARED_INFO]
        li      r2, shared_info
        st      [r2], r3
        ld      r3, [r1 + SI_P2M]
        li      r2, p2m
        st      [r2], r3
        ld      r3, [r1 + SI_CONTROL_PORT]
        li      r2, control_port
        st      [r2], r3
        call    read_machine_frames     ; r14 = the page table's machine address
        li      r1, upcall
        call    hyp_set_callbacks
        li      r1, shared_info         ; events on: upcall_mask = 0
        ld      r1, [r1]
        li      r2, 0
        st      [r1 + SH_UPCALL_MASK], r2
        call    read_params             ; r10 = spin count, r11 = hot pages, r12 = writes
        .include "writes.s"

; read_machine_frames: r14 = machine address of the page table behind the first 4 MiB (the
; frame its page directory's entry 0 names).  Clobbers r1.
read_machine_frames:
        li      r1, start_info
        ld      r1, [r1]
        ld      r1, [r1 + SI_PT_BASE]   ; the directory's virtual address
        ld      r14, [r1]               ; entry 0: a machine frame | flags
        shri    r14, r14, 12
        shli    r14, r14, 12
        ret

; remap_window(r1 = virtual address of a hot page) -> r1 = WINDOW_VA, mapping that page's
; machine frame (the p2m says which).  One mmu_update request {ptr, val}.  Clobbers r2..r6.
remap_window:
        li      r2, p2m
        ld      r2, [r2]
        shri    r3, r1, 12
        shli    r3, r3, 2
        add     r2, r2, r3
        ld      r3, [r2]                ; the page's machine address
        ori     r3, r3, WINDOW_PTE
        li      r4, WINDOW_INDEX * 4
        add     r4, r4, r14             ; the window entry's machine address
        li      r6, mmu_req
        st      [r6], r4
        st      [r6 + 4], r3
        mov     r1, r6
        li      r2, 1
        call    hyp_mmu_update
        li      r6, mmu_req             ; no machine address stays in memory
        li      r2, 0
        st      [r6], r2
        st      [r6 + 4], r2
        cmpi    r1, 1
        jnz     .refused
        li      r1, WINDOW_VA
        ret
.refused:
        li      r1, msg_refused
        call    puts
        li      r1, SHUTDOWN_crash
        call    hyp_shutdown

; upcall: an event.  The only port this kernel has is the control channel's: suspend.  The frame
; is the VMM's (error, pc, cs, flags, old sp); r1 goes below it for hyp_iret.
upcall: push    r1
        push    r2
        push    r3
        push    r4
        li      r1, shared_info
        ld      r1, [r1]
        li      r2, 0
        st      [r1 + SH_UPCALL_PENDING], r2
        li      r3, control_port        ; clear the port's pending bit (ports 1..31: word 0)
        ld      r3, [r3]
        li      r4, 1
        shl     r4, r4, r3
        ld      r2, [r1 + SH_EVTCHN_PENDING]
        and     r3, r2, r4
        cmpi    r3, 0
        jz      .out                    ; not ours: nothing to do
        not     r4, r4
        and     r2, r2, r4
        st      [r1 + SH_EVTCHN_PENDING], r2
        li      r1, HYPERVISOR_sched_op
        li      r2, SCHEDOP_shutdown
        li      r3, SHUTDOWN_suspend
        int     HYPERVISOR_VECTOR       ; ... and here the domain may be on another host
        cmpi    r1, RESUMED_NEW_DOMAIN
        jnz     .out                    ; 1: cancelled, nothing moved
        call    read_machine_frames     ; a new domain: new machine frames
        li      r1, start_info          ; and a new control port
        ld      r1, [r1]
        ld      r2, [r1 + SI_CONTROL_PORT]
        li      r1, control_port
        st      [r1], r2
.out:   pop     r4
        pop     r3
        pop     r2
        jmp     hyp_iret

        .include "params.s"

        .include "words.s"
        .include "pv_console.s"
        .include "pv.s"

        .data
msg_head:       .asciz  "dirty: "
msg_over:       .asciz  " writes over "
msg_sum:        .asciz  " pages, checksum "
msg_bad:        .asciz  "dirty: the console input must be PERIOD (>= 16) HOT (1 to 495) WRITES\n"
msg_refused:    .asciz  "dirty: mmu_update refused\n"
        .align  4
start_info:     .word   0
shared_info:    .word   0
p2m:            .word   0
control_port:   .word   0
mmu_req:        .word   0, 0
input:          .space  INPUT_MAX
word:           .space  INPUT_MAX + 1
        .align  4
        .text

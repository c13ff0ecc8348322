; pv.s — the paravirtual ABI for ring-1 guest kernels: constants and hypercall wrappers.
;
; The contract is docs/paravirtual-abi.md (toyvisor's Xen): a hypercall is `int 0x82` from ring 1
; with r1 = hypercall number, r2..r6 = arguments, result in r1 (>= 0 success, < 0 an error code);
; every other register is preserved.
;
; Calling convention of the wrappers: as for every guests/lib routine (see console.s) —
; arguments in r1..r4, result in r1, `call`/`ret`; the hypercall's arguments are the wrapper's
; shifted up by one register (wrapper r1 -> hypercall r2, ...). A wrapper clobbers r1 and the
; registers it shifts its arguments into (listed for each); r0 and r8..r14 are preserved.
;
; Include this file after your code (it contains code), like the other library files. The
; constants need no code, so `.include "pv.s"` anywhere gives both.
;
;   hyp_set_trap_table(r1 = table)                 {vector, flags, handler} x n, handler 0 ends
;   hyp_mmu_update(r1 = reqs, r2 = count)          {ptr, val} x count -> number applied | error
;   hyp_console_write(r1 = buf, r2 = len)          console_io(write)
;   hyp_multicall(r1 = calls, r2 = count)          {op, a1..a5, result} x count (MC_* offsets)
;   hyp_update_va_mapping(r1 = va, r2 = pte, r3 = flags)        UVMF_*
;   hyp_set_timer(r1 = deadline)                   virtual time; 0 cancels
;   hyp_yield(), hyp_block(), hyp_shutdown(r1 = reason)         sched_op
;   hyp_evtchn_alloc_unbound(r1 = remote dom)      -> port
;   hyp_evtchn_bind_interdomain(r1 = remote dom, r2 = remote port) -> port
;   hyp_evtchn_bind_virq(r1 = virq)                -> port
;   hyp_evtchn_send(r1 = port), hyp_evtchn_close(r1 = port), hyp_evtchn_unmask(r1 = port)
;   hyp_grant_access(r1 = dom, r2 = pfn, r3 = readonly)         -> gref
;   hyp_grant_map(r1 = dom, r2 = gref, r3 = va)    -> handle
;   hyp_grant_unmap(r1 = handle), hyp_grant_end_access(r1 = gref)
;   hyp_memory_op(r1 = cmd, r2 = list, r3 = count) -> number done
;   hyp_domctl(r1 = cmd, r2 = a, r3 = b)           dom0 only
;   hyp_set_callbacks(r1 = event callback)
;   hyp_stack_switch(r1 = sp)                      ring-1 stack for traps from ring 3
;   hyp_mmuext(r1 = cmd, r2 = arg)                 MMUEXT_*
;   hyp_physdev_op(r1 = cmd, r2 = port, r3 = value)             dom0 only
;   hyp_iret                                       NOT called: `jmp hyp_iret` with sp at the
;                                                  guest's r1 + a trap frame; see below
;   pv_ma(r1 = p2m, r2 = pfn) -> r1 = machine address of the pfn (p2m lookup)   clobbers: r2

; --- hypercall numbers ----------------------------------------------------------------------
HYPERVISOR_VECTOR               = 0x82          ; int 0x82, gate DPL 1
HYPERVISOR_set_trap_table       = 0
HYPERVISOR_mmu_update           = 1
HYPERVISOR_console_io           = 2
HYPERVISOR_multicall            = 3
HYPERVISOR_update_va_mapping    = 4
HYPERVISOR_set_timer_op         = 5
HYPERVISOR_sched_op             = 6
HYPERVISOR_event_channel_op     = 7
HYPERVISOR_grant_table_op       = 8
HYPERVISOR_memory_op            = 9
HYPERVISOR_domctl               = 10
HYPERVISOR_set_callbacks        = 11
HYPERVISOR_stack_switch         = 12
HYPERVISOR_iret                 = 13
HYPERVISOR_mmuext_op            = 14
HYPERVISOR_physdev_op           = 15

; --- error codes (results < 0) ----------------------------------------------------------------
PV_EPERM        = -1
PV_ENOENT       = -2
PV_ESRCH        = -3
PV_EAGAIN       = -11
PV_ENOMEM       = -12
PV_EACCES       = -13
PV_EFAULT       = -14
PV_EBUSY        = -16
PV_EEXIST       = -17
PV_EINVAL       = -22
PV_ENOSPC       = -28
PV_ENOSYS       = -38

; --- sub-commands -------------------------------------------------------------------------------
CONSOLEIO_write         = 0
CONSOLEIO_read          = 1

SCHEDOP_yield           = 0
SCHEDOP_block           = 1
SCHEDOP_shutdown        = 2
; shutdown reasons: the ABI page does not define them; these are Xen's values
SHUTDOWN_poweroff       = 0
SHUTDOWN_reboot         = 1
SHUTDOWN_suspend        = 2
SHUTDOWN_crash          = 3

EVTCHNOP_alloc_unbound    = 0
EVTCHNOP_bind_interdomain = 1
EVTCHNOP_bind_virq        = 2
EVTCHNOP_send             = 3
EVTCHNOP_close            = 4
EVTCHNOP_unmask           = 5

GNTTABOP_grant_access   = 0
GNTTABOP_map            = 1
GNTTABOP_unmap          = 2
GNTTABOP_end_access     = 3

XENMEM_decrease_reservation = 0
XENMEM_increase_reservation = 1

DOMCTL_pause            = 0
DOMCTL_unpause          = 1
DOMCTL_destroy          = 2
DOMCTL_list             = 3
DOMCTL_create           = 4
DOMCTL_balloon          = 5

MMUEXT_PIN_TABLE        = 0
MMUEXT_PIN_DIRECTORY    = 1
MMUEXT_UNPIN            = 2
MMUEXT_NEW_BASEPTR      = 3
MMUEXT_TLB_FLUSH        = 4
MMUEXT_INVLPG           = 5
; mmuext_op's pin/unpin/new_baseptr argument is an "mfn". The p2m holds machine frame
; *addresses*; an mfn is the address >> MFN_SHIFT (as in Xen: a frame number).
MFN_SHIFT               = 12

PHYSDEVOP_in            = 0
PHYSDEVOP_out           = 1

UVMF_NONE               = 0
UVMF_INVLPG             = 1
UVMF_TLB_FLUSH          = 2

; --- virtual trap table entries: {vector, flags, handler} ----------------------------------------
TRAP_DPL0               = 0
TRAP_DPL1               = 1
TRAP_DPL3               = 3
TRAP_FAST               = 4             ; vectors >= 32: a real gate, no VMM entry
TRAP_ENTRY_SIZE         = 12

; --- multicall entries: {op, arg1..arg5, result} -------------------------------------------------
MC_OP                   = 0
MC_ARG1                 = 4
MC_ARG2                 = 8
MC_ARG3                 = 12
MC_ARG4                 = 16
MC_ARG5                 = 20
MC_RESULT               = 24
MC_ENTRY_SIZE           = 28

MMU_REQ_SIZE            = 8             ; mmu_update request {ptr, val}

; --- start_info (read-only; r1 at entry) --------------------------------------------------------
START_INFO_MAGIC        = 0x50565354    ; "PVST"
SI_MAGIC                = 0x00
SI_DOMID                = 0x04
SI_FLAGS                = 0x08
SIF_PRIVILEGED          = 1             ; dom0
SI_NR_PAGES             = 0x0C
SI_SHARED_INFO          = 0x10          ; virtual address of shared_info
SI_PT_BASE              = 0x14          ; virtual address of the current page directory
SI_P2M                  = 0x18          ; virtual address of the p2m array (pfn -> machine address)
SI_FIRST_FREE_PFN       = 0x1C
SI_CONSOLE_EVTCHN       = 0x20
SI_CONSOLE_GREF         = 0x24
SI_BLOCK_EVTCHN         = 0x28
SI_BLOCK_GREF           = 0x2C
SI_VMM_START            = 0x30

PV_VMM_START            = 0xFC000000    ; top 64 MiB: the VMM's, in every address space
PV_VMM_PDE              = PV_VMM_START >> 22    ; first page-directory index the VMM owns

; --- shared_info ------------------------------------------------------------------------------
SH_UPCALL_PENDING       = 0x00
SH_UPCALL_MASK          = 0x04          ; the paravirtual IF: 1 = events deferred
SH_EVTCHN_PENDING       = 0x08          ; 2 words: ports 0..63
SH_EVTCHN_MASK          = 0x10          ; 2 words
SH_CR2                  = 0x18          ; fault address of the last bounced page fault
SH_SYSTEM_TIME          = 0x1C          ; machine ticks at the last VMM exit
SH_VIRTUAL_TIME         = 0x20          ; instructions this domain executed

; --- VIRQs ------------------------------------------------------------------------------------
VIRQ_TIMER              = 0
VIRQ_CONSOLE            = 1
VIRQ_DOM_EXC            = 2

; --- I/O rings (one granted page) ---------------------------------------------------------------
RING_REQ_PROD           = 0x00
RING_REQ_EVENT          = 0x04
RING_RSP_PROD           = 0x08
RING_RSP_EVENT          = 0x0C
RING_SLOTS              = 0x40
RING_SLOT_SIZE          = 64
RING_SIZE               = 32

; ---------------------------------------------------------------------------------------------
; Wrappers.

hyp_set_trap_table:                             ; clobbers: r1, r2
        mov     r2, r1
        li      r1, HYPERVISOR_set_trap_table
        int     HYPERVISOR_VECTOR
        ret

hyp_mmu_update:                                 ; clobbers: r1..r3
        mov     r3, r2
        mov     r2, r1
        li      r1, HYPERVISOR_mmu_update
        int     HYPERVISOR_VECTOR
        ret

hyp_console_write:                              ; clobbers: r1..r4
        li      r4, CONSOLEIO_write
        jmp     hyp_console_io
; hyp_console_read(r1 = buf, r2 = count) -> r1 = bytes moved (0: no input waiting)
hyp_console_read:                               ; clobbers: r1..r4
        li      r4, CONSOLEIO_read
hyp_console_io:                                 ; r1 = buf, r2 = count, r4 = command
        mov     r3, r2
        mov     r2, r4
        mov     r4, r1
        li      r1, HYPERVISOR_console_io
        int     HYPERVISOR_VECTOR
        ret

hyp_multicall:                                  ; clobbers: r1..r3
        mov     r3, r2
        mov     r2, r1
        li      r1, HYPERVISOR_multicall
        int     HYPERVISOR_VECTOR
        ret

hyp_update_va_mapping:                          ; clobbers: r1..r4
        mov     r4, r3
        mov     r3, r2
        mov     r2, r1
        li      r1, HYPERVISOR_update_va_mapping
        int     HYPERVISOR_VECTOR
        ret

hyp_set_timer:                                  ; clobbers: r1, r2
        mov     r2, r1
        li      r1, HYPERVISOR_set_timer_op
        int     HYPERVISOR_VECTOR
        ret

hyp_yield:                                      ; clobbers: r1..r3
        li      r2, SCHEDOP_yield
        li      r3, 0
        li      r1, HYPERVISOR_sched_op
        int     HYPERVISOR_VECTOR
        ret

hyp_block:                                      ; clobbers: r1..r3
        li      r2, SCHEDOP_block
        li      r3, 0
        li      r1, HYPERVISOR_sched_op
        int     HYPERVISOR_VECTOR
        ret

hyp_shutdown:                                   ; clobbers: r1..r3 (returns only on error)
        mov     r3, r1
        li      r2, SCHEDOP_shutdown
        li      r1, HYPERVISOR_sched_op
        int     HYPERVISOR_VECTOR
        ret

; event_channel_op(cmd, a, b)
hyp_evtchn_alloc_unbound:                       ; clobbers: r1..r4
        li      r2, EVTCHNOP_alloc_unbound
        jmp     hyp_evtchn_op1
hyp_evtchn_bind_virq:
        li      r2, EVTCHNOP_bind_virq
        jmp     hyp_evtchn_op1
hyp_evtchn_send:
        li      r2, EVTCHNOP_send
        jmp     hyp_evtchn_op1
hyp_evtchn_close:
        li      r2, EVTCHNOP_close
        jmp     hyp_evtchn_op1
hyp_evtchn_unmask:
        li      r2, EVTCHNOP_unmask
hyp_evtchn_op1:                                 ; r2 = cmd, r1 = a
        mov     r3, r1
        li      r4, 0
        li      r1, HYPERVISOR_event_channel_op
        int     HYPERVISOR_VECTOR
        ret
hyp_evtchn_bind_interdomain:                    ; clobbers: r1..r4
        mov     r4, r2
        mov     r3, r1
        li      r2, EVTCHNOP_bind_interdomain
        li      r1, HYPERVISOR_event_channel_op
        int     HYPERVISOR_VECTOR
        ret

; grant_table_op(cmd, a, b, c)
hyp_grant_access:                               ; clobbers: r1..r5
        li      r4, GNTTABOP_grant_access
        jmp     hyp_grant_op3
hyp_grant_map:
        li      r4, GNTTABOP_map
hyp_grant_op3:                                  ; r4 = cmd; r1..r3 = a, b, c
        mov     r5, r3
        mov     r3, r1
        mov     r1, r4
        mov     r4, r2
        mov     r2, r1                          ; cmd
        li      r1, HYPERVISOR_grant_table_op
        int     HYPERVISOR_VECTOR
        ret
hyp_grant_unmap:                                ; clobbers: r1..r5
        li      r2, GNTTABOP_unmap
        jmp     hyp_grant_op1
hyp_grant_end_access:
        li      r2, GNTTABOP_end_access
hyp_grant_op1:                                  ; r2 = cmd, r1 = a
        mov     r3, r1
        li      r4, 0
        li      r5, 0
        li      r1, HYPERVISOR_grant_table_op
        int     HYPERVISOR_VECTOR
        ret

hyp_memory_op:                                  ; clobbers: r1..r4
        mov     r4, r3
        mov     r3, r2
        mov     r2, r1
        li      r1, HYPERVISOR_memory_op
        int     HYPERVISOR_VECTOR
        ret

hyp_domctl:                                     ; clobbers: r1..r4
        mov     r4, r3
        mov     r3, r2
        mov     r2, r1
        li      r1, HYPERVISOR_domctl
        int     HYPERVISOR_VECTOR
        ret

hyp_set_callbacks:                              ; clobbers: r1, r2
        mov     r2, r1
        li      r1, HYPERVISOR_set_callbacks
        int     HYPERVISOR_VECTOR
        ret

hyp_stack_switch:                               ; clobbers: r1, r2
        mov     r2, r1
        li      r1, HYPERVISOR_stack_switch
        int     HYPERVISOR_VECTOR
        ret

hyp_mmuext:                                     ; clobbers: r1..r3
        mov     r3, r2
        mov     r2, r1
        li      r1, HYPERVISOR_mmuext_op
        int     HYPERVISOR_VECTOR
        ret

hyp_physdev_op:                                 ; clobbers: r1..r4
        mov     r4, r3
        mov     r3, r2
        mov     r2, r1
        li      r1, HYPERVISOR_physdev_op
        int     HYPERVISOR_VECTOR
        ret

; pv_disk_read(r1 = sector, r2 = DMA machine address) -> r1 = the disk's status (DISK_OK = 0,
; 1 bad sector, 2 bad address) or a physdev_op error (< 0: EACCES for DMA outside the caller's
; frames). The real disk, driven with physdev_op as a native driver drives it with in/out: dom0
; only.                                                              clobbers: r1..r4
pv_disk_read:
        push    r8
        mov     r8, r2
        mov     r3, r1
        li      r1, PHYSDEVOP_out
        li      r2, PORT_DISK_SECTOR
        call    hyp_physdev_op
        li      r1, PHYSDEVOP_out
        li      r2, PORT_DISK_ADDR
        mov     r3, r8
        call    hyp_physdev_op
        cmpi    r1, 0
        jnz     .done
        li      r1, PHYSDEVOP_out
        li      r2, PORT_DISK_CMD
        li      r3, DISK_CMD_READ
        call    hyp_physdev_op
        li      r1, PHYSDEVOP_in
        li      r2, PORT_DISK_STATUS
        li      r3, 0
        call    hyp_physdev_op
.done:  pop     r8
        ret

; hyp_iret: `jmp` here (do not call): the VMM pops a trap frame off the ring-1 stack, restores
; upcall_mask from the frame's IF, and resumes there; it never comes back. The frame is the
; CPU's (docs/machine.md: error code, pc, cs, flags, old sp, from its lowest word up). Every
; register except r1 must already hold the value to resume with; r1 carries the hypercall
; number, so — as Xen's iret_context — the guest's r1 is pushed just below the frame:
;     sp -> r1, error code, pc, cs, flags, old sp
; IRET_FRAME_R1 (words of guest registers below the CPU frame) records that choice, so a kernel
; computes where sp must point as  (address of the error code) - 4*IRET_FRAME_R1.
IRET_FRAME_R1           = 1
hyp_iret:
        li      r1, HYPERVISOR_iret
        int     HYPERVISOR_VECTOR
.dead:  jmp     .dead                           ; not reached: iret does not return

; pv_ma(r1 = p2m base, r2 = pfn) -> r1 = machine address of that pseudo-physical page.
;                                                                    clobbers: r1, r2
pv_ma:
        shli    r2, r2, 2
        add     r1, r1, r2
        ld      r1, [r1]
        ret

; pv_start(r1 = start_info) -> r1 = 0, or -1 when r1 is not a start_info page (bad magic). The
; first thing a paravirtual kernel does: keeps what it needs of start_info in the words below
; (pv_first_free_pfn is the kernel's to advance as it allocates pages).   clobbers: r1..r3
pv_start:
        li      r2, pv_start_info
        st      [r2], r1
        ld      r2, [r1 + SI_MAGIC]
        li      r3, START_INFO_MAGIC
        cmp     r2, r3
        jnz     .bad
        ld      r2, [r1 + SI_SHARED_INFO]
        li      r3, pv_shared_info
        st      [r3], r2
        ld      r2, [r1 + SI_PT_BASE]
        li      r3, pv_pt_base
        st      [r3], r2
        ld      r2, [r1 + SI_P2M]
        li      r3, pv_p2m
        st      [r3], r2
        ld      r2, [r1 + SI_FIRST_FREE_PFN]
        li      r3, pv_first_free_pfn
        st      [r3], r2
        ld      r2, [r1 + SI_NR_PAGES]
        li      r3, pv_nr_pages
        st      [r3], r2
        li      r1, 0
        ret
.bad:   li      r1, -1
        ret

        .data
pv_start_info:          .word   0       ; virtual addresses the VMM handed the kernel
pv_shared_info:         .word   0
pv_pt_base:             .word   0       ; the boot page directory
pv_p2m:                 .word   0
pv_first_free_pfn:      .word   0
pv_nr_pages:            .word   0
        .text

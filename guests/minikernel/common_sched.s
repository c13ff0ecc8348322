; common_sched.s — the architecture-independent half of the scheduler, shared by the native
; minikernel (kernel.s) and its paravirtual port (pv/kernel.s): a task's first trap frame
; (TASK_FIRST_FRAME, used by each kernel's task_init), the round-robin `schedule`, `switch_to`
; and the final summary.
;
; Uses the architecture layer each kernel defines before including this file (see kernel.s):
;   SWITCH_SPACES    r1 = task: load its page directory and its kernel stack (keeps r1)
;   READ_CLOCK reg   reg = the clock shown in the summary
;   POWER_OFF        stop the timer and the machine (does not return)
; and msg_halt, the end of the summary's clock line.

; TASK_FIRST_FRAME (r8 = task, its T_KTOP and T_ENTRY set): the first trap frame, at the top of
; its kernel stack, that "returns" to the entry in ring 3; the task becomes runnable.
;                                                                    clobbers: r1..r3
        .macro TASK_FIRST_FRAME
        ld      r1, [r8 + T_KTOP]
        addi    r1, r1, -FRAME_SIZE
        st      [r8 + T_FRAME], r1
        li      r2, 0
        li      r3, FRAME_SIZE / 4
        call    memset32
        ld      r1, [r8 + T_FRAME]
        ld      r2, [r8 + T_ENTRY]
        st      [r1 + F_PC], r2
        li      r2, 3                   ; cs: CPL 3
        st      [r1 + F_CS], r2
        li      r2, FLAG_IF             ; interrupts (events) on in the task
        st      [r1 + F_FLAGS], r2
        li      r2, USTACK_TOP
        st      [r1 + F_USP], r2
        li      r2, ST_RUNNABLE
        st      [r8 + T_STATE], r2
        .endm

; schedule -> r1 = frame to resume. Round robin: the first runnable task after the current
; one, the current one last. None left: all_done (does not return).
; Reached with `jmp` from the dispatch paths, so its `ret` goes back to trap_common.
schedule:
        li      r2, cur_task
        ld      r2, [r2]                ; r2 = current
        mov     r3, r2
.next:  addi    r3, r3, TASK_SIZE
        li      r4, tasks_end
        cmp     r3, r4
        jb      .check
        li      r3, tasks
.check: ld      r4, [r3 + T_STATE]
        cmpi    r4, ST_RUNNABLE
        jz      .found
        cmp     r3, r2
        jnz     .next
        jmp     all_done
.found: mov     r1, r3
        ; fall through

; switch_to(r1 = task) -> r1 = its frame. Switches to its own page directory and its own kernel
; stack (SWITCH_SPACES) unless it is already the current task.
;                                         clobbers: r1..r3 and what SWITCH_SPACES clobbers
switch_to:
        li      r2, cur_task
        ld      r3, [r2]
        cmp     r3, r1
        jz      .same
        st      [r2], r1
        SWITCH_SPACES                   ; its address space and kernel stack
        ld      r3, [r1 + T_RUNS]
        addi    r3, r3, 1
        st      [r1 + T_RUNS], r3
        li      r2, stat_switches
        ld      r3, [r2]
        addi    r3, r3, 1
        st      [r2], r3
.same:  ld      r1, [r1 + T_FRAME]
        ret

; all_done: every task exited or was killed. Print a summary, stop the timer, halt.
; The clock line ends with the kernel's msg_halt.
all_done:
        call    kline
        li      r1, msg_alldone
        call    puts
        call    knl
        li      r8, tasks
.task:  li      r1, tasks_end
        cmp     r8, r1
        jae     .stats
        call    kline
        mov     r1, r8
        call    print_task
        li      r1, msg_open
        call    puts
        ld      r1, [r8 + T_NAME]
        call    putc
        li      r1, msg_close
        call    puts
        ld      r2, [r8 + T_STATE]
        li      r1, msg_exited
        cmpi    r2, ST_EXITED
        jz      .how
        li      r1, msg_killedby
.how:   call    puts
        ld      r1, [r8 + T_EXIT]
        call    putdec_s
        li      r1, msg_runs
        call    puts
        ld      r1, [r8 + T_RUNS]
        call    putdec
        li      r1, msg_times
        call    puts
        call    knl
        addi    r8, r8, TASK_SIZE
        jmp     .task
.stats: call    kline
        li      r1, msg_stats1
        call    puts
        li      r1, stat_ticks
        ld      r1, [r1]
        call    putdec
        li      r1, msg_stats2
        call    puts
        li      r1, stat_switches
        ld      r1, [r1]
        call    putdec
        li      r1, msg_stats3
        call    puts
        li      r1, stat_syscalls
        ld      r1, [r1]
        call    putdec
        li      r1, msg_stats4
        call    puts
        li      r1, stat_pfs
        ld      r1, [r1]
        call    putdec
        li      r1, msg_stats5
        call    puts
        li      r1, stat_killed
        ld      r1, [r1]
        call    putdec
        li      r1, msg_stats6
        call    puts
        li      r1, stat_bps
        ld      r1, [r1]
        call    putdec
        li      r1, msg_stats7
        call    puts
        call    knl
        call    kline
        li      r1, msg_clock
        call    puts
        READ_CLOCK r1
        call    putdec
        li      r1, msg_halt
        call    puts
        call    knl
        POWER_OFF                       ; stops the timer; does not return

        .data
msg_alldone:    .asciz  "all tasks finished"
msg_open:       .asciz  " ("
msg_close:      .asciz  "): "
msg_exited:     .asciz  "exited with code "
msg_killedby:   .asciz  "killed by vector "
msg_runs:       .asciz  ", scheduled "
msg_times:      .asciz  " times"
msg_stats1:     .asciz  "stats: "
msg_stats2:     .asciz  " timer interrupts, "
msg_stats3:     .asciz  " context switches, "
msg_stats4:     .asciz  " syscalls, "
msg_stats5:     .asciz  " page faults handled, "
msg_stats6:     .asciz  " tasks killed, "
msg_stats7:     .asciz  " breakpoints"
msg_clock:      .asciz  "clock: "
        .text

; thread_init.s — a thread's creation, shared by smpkernel and its paravirtual port (guests/pvsmp).
;
; Uses the macro each kernel defines before including this file:
;   THREAD_REGS   r3 = top of the thread's kernel stack, r4 = 0, r7 = thread: the thread's saved
;                 registers below the 5-word frame, in the order that kernel's `resume` pops them
;                 (r0..r14 all 0 but r1 = thread); clobbers r2, r4, r5

; thread_init(r1 = thread): its TCB, its kernel stack holding the frame of a first entry to
; user_thread in ring 3 with its registers below it (FRAME bytes in all), and a place in its
; CPU's run queue.  clobbers r1..r7, r13
thread_init:
        mov     r7, r1
        shli    r2, r1, TCB_SHIFT
        li      r6, TCBS
        add     r6, r6, r2                              ; r6 = its TCB
        addi    r2, r1, 1
        shli    r2, r2, KSTACK_SHIFT
        li      r3, KSTACKS
        add     r3, r3, r2                              ; r3 = top of its kernel stack
        st      [r6 + TCB_KTOP], r3
        addi    r2, r1, 1
        shli    r2, r2, USTACK_SHIFT
        li      r4, USER_STACKS
        add     r4, r4, r2                              ; top of its user stack
        st      [r3 - 4], r4                            ; the frame iret pops: sp,
        li      r4, FLAG_IF
        st      [r3 - 8], r4                            ;   flags (interrupts/events on),
        li      r4, 3
        st      [r3 - 12], r4                           ;   cs (ring 3),
        li      r4, user_thread
        st      [r3 - 16], r4                           ;   pc,
        li      r4, 0
        st      [r3 - 20], r4                           ;   error code
        THREAD_REGS                                     ; r0..r14 below it
        addi    r2, r3, -FRAME
        st      [r6 + TCB_KSP], r2
        li      r2, RUNNABLE
        st      [r6 + TCB_STATE], r2
        li      r1, ncpus                               ; its CPU: thread mod ncpus
        ld      r1, [r1]
        remu    r1, r7, r1
        st      [r6 + TCB_CPU], r1
        call    percpu
        ld      r2, [r13 + PC_NTHREADS]
        shli    r3, r2, 2
        add     r3, r3, r13
        st      [r3 + PC_RUNQ], r7
        addi    r2, r2, 1
        st      [r13 + PC_NTHREADS], r2
        addi    r2, r2, -1                              ; the first pick takes slot 0
        st      [r13 + PC_SLOT], r2
        ret

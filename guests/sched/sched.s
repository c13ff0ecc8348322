; sched.s — what every thread of a guests/sched workload shares: the memory layout, the start-up
; of the VM's vCPUs, a spinlock that raises the smart-scheduling flag, and a spinning barrier.
;
; Every vCPU of a VM runs the same program and tells itself apart by `rdpid` (its virtual CPU
; number).  vCPU 0 starts the others with start IPIs, as an SMP kernel does.
;
; Spin loops are exactly four instructions (pause, ld, cmp, branch), so the hypervisor counts the
; instructions spent spinning as 4 x the vCPU's `pause` count (vmm/sched/host.py, SPIN_LOOP).
;
; Convention: args r1..r4, result r1; the routines keep r8..r14.

PARAMS  = 0x3000        ; written by the hypervisor before the VM starts:
P_VCPUS = 0             ;   [PARAMS + 0] the VM's number of vCPUs
P_WORK  = 4             ;   [PARAMS + 4] the workload's `work` (what it means: each program)
FLAGS   = 0x3100        ; one word per vCPU: spinlocks it holds (the paravirtual "flag speciale"
                        ; the hypervisor reads to give a lock holder an extra quantum)
SHARED  = 0x4000        ; locks, barriers, counters of the program
PRIVATE = 0x5000        ; 1 KiB of private data per vCPU
STACKS  = 0xC000        ; 512 bytes of stack per vCPU, growing down from STACKS + 512 * (n + 1)
IDT     = 0xE000        ; the interrupt table (shared by the vCPUs)

; sched_start: sp for this vCPU; vCPU 0 starts every other vCPU at `start`.  Returns r1 = this
; vCPU's number.  Call it first, with `call` needing no stack: it is entered with `jmp`.
        .macro  SCHED_START
        rdpid   r8
        addi    r1, r8, 1
        shli    r1, r1, 9
        li      sp, STACKS
        add     sp, sp, r1
        cmpi    r8, 0
        jnz     .started
        li      r2, 1
        li      r4, PARAMS
        ld      r3, [r4 + P_VCPUS]
.next:  cmp     r2, r3
        jae     .started
        out     PORT_IPI_DEST, r2
        li      r1, start
        out     PORT_CPU_START, r1
        addi    r2, r2, 1
        jmp     .next
.started:
        .endm

; spin_lock(r1 = address of the lock word): test-and-test-and-set; then this vCPU's flag word
; counts one more lock held.  Clobbers r2, r3.
spin_lock:
.try:   li      r2, 1
        xchg    r2, [r1]
        cmpi    r2, 0
        jz      .held
.spin:  pause
        ld      r2, [r1]
        cmpi    r2, 0
        jnz     .spin
        jmp     .try
.held:  rdpid   r3
        shli    r3, r3, 2
        ld      r2, [r3 + FLAGS]
        addi    r2, r2, 1
        st      [r3 + FLAGS], r2
        ret

; spin_unlock(r1 = address of the lock word).  Clobbers r2, r3.
spin_unlock:
        rdpid   r3
        shli    r3, r3, 2
        ld      r2, [r3 + FLAGS]
        addi    r2, r2, -1
        st      [r3 + FLAGS], r2
        li      r2, 0
        st      [r1], r2
        ret

; barrier(r1 = address of [count, sense], r2 = participants): sense-reversing; the last to
; arrive flips the sense, the others spin until it flips.  Clobbers r3..r5.
barrier:
        ld      r4, [r1 + 4]
        li      r3, 1
        xadd    r3, [r1]
        addi    r3, r3, 1
        cmp     r3, r2
        jnz     .wait
        li      r3, 0
        st      [r1], r3
        li      r5, 1
        sub     r4, r5, r4
        st      [r1 + 4], r4
        ret
.wait:  pause
        ld      r5, [r1 + 4]
        cmp     r5, r4
        jz      .wait
        ret

; work(r1 = rounds): r1 rounds over this vCPU's 1 KiB of private data (a load, an add and a
; store per word, 64 words a round: 6 instructions a word).  Clobbers r2..r6.
work:
        rdpid   r2
        shli    r2, r2, 10
        addi    r2, r2, PRIVATE
.round: cmpi    r1, 0
        jz      .done
        mov     r3, r2
        addi    r4, r2, 256
.word:  ld      r5, [r3]
        add     r5, r5, r1
        st      [r3], r5
        addi    r3, r3, 4
        cmp     r3, r4
        jb      .word
        addi    r1, r1, -1
        jmp     .round
.done:  ret

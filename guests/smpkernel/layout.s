; layout.s — smpkernel's constants: memory map, data layouts, vectors, syscalls, workload sizes.

        ; --- memory (4 MiB, identity-mapped; the first 64 KiB are the kernel's, PL0) -----------
        USER_BASE       = 0x10000               ; user code, data and guests/lib/smp.s: PL3
        IDT_BASE        = 0x3000
        KERNEL_DATA     = 0x4000
        PD              = 0x5000               ; page directory
        PT              = 0x6000               ; the one page table (4 MiB)
        TCBS            = 0x7000               ; thread control blocks
        PERCPU          = 0x7400               ; per-CPU data
        KSTACKS         = 0x8000                ; thread t's kernel stack ends at KSTACKS + (t+1) KiB
        IDLE_STACKS     = 0xA000                ; CPU c's boot/idle stack ends at IDLE_STACKS + (c+1) KiB
        USER_STACKS     = 0x200000              ; thread t's user stack ends at USER_STACKS + (t+1)*4 KiB
        WINDOW          = 0x300000              ; the page every thread reads: maps generation 1, then 2
        WINDOW_GEN1     = 0x301000
        WINDOW_GEN2     = 0x302000
        KSTACK_SHIFT    = 10
        USTACK_SHIFT    = 12
        IDLE_STACK_SHIFT = 10
        IDLE_STACK_SIZE = 1024

        ; --- threads and CPUs --------------------------------------------------------------------
        NTHREADS        = 8                     ; worker threads, whatever the number of CPUs
        MAX_KCPUS       = 16                    ; CPUs the kernel uses (the others never start)
        IDLE_TCB        = NTHREADS              ; CPU c's idle thread is TCB IDLE_TCB + c
        TCB_SHIFT       = 4                     ; a TCB: saved kernel sp, kernel stack top, state, cpu
        TCB_KSP         = 0
        TCB_KTOP        = 4
        TCB_STATE       = 8
        TCB_CPU         = 12
        RUNNABLE        = 1
        DEAD            = 2
        PERCPU_SHIFT    = 6                     ; per CPU: current TCB, run-queue slot, count, queue
        PC_CURRENT      = 0
        PC_SLOT         = 4
        PC_NTHREADS     = 8
        PC_RUNQ         = 12
        FRAME           = 80                    ; a thread's saved r0..r14 and its 5-word trap frame
        SLICE_TICKS     = 1500                  ; every CPU's local timer period

        ; --- vectors and system calls ------------------------------------------------------------
        VEC_RESCHED     = VEC_IPI0              ; 48: reschedule IPI
        VEC_SHOOTDOWN   = VEC_IPI0 + 1          ; 49: TLB shootdown IPI
        SYS_EXIT        = 0
        SYS_YIELD       = 1
        SYS_PUTS        = 2                     ; r2 = string
        SYS_REMAP       = 3                     ; move the window to generation 2 (a TLB shootdown)

        ; --- the workload ------------------------------------------------------------------------
        LOCKED_ITERS    = 50                    ; per thread, under the ticket lock
        UNLOCKED_ITERS  = 200                   ; per thread, without a lock
        SUM_N           = 1024                  ; squares 1..SUM_N, 128 per thread
        SUM_SLICE_SHIFT = 7

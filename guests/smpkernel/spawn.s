; spawn.s — the boot's thread creation, shared by smpkernel and its paravirtual port
; (guests/pvsmp): included in `start` after the memory is set up; every thread gets its TCB,
; first frame and run-queue place (thread_init, thread_init.s) and `alive` counts them.

        ; --- threads: thread t runs on CPU t mod ncpus ----------------------------------------
        li      r8, 0
.thread:
        cmpi    r8, NTHREADS
        jz      .threads
        mov     r1, r8
        call    thread_init
        addi    r8, r8, 1
        jmp     .thread
.threads:
        li      r1, alive
        li      r2, NTHREADS
        st      [r1], r2

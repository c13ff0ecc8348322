; layout.s — minikernel memory map, data-structure layouts and syscall ABI (constants only).
;
; Physical memory (all below 4 MiB; the kernel identity-maps all of it at PL0):
;
;   0x00000000  kernel image: .text = kernel code, then the page-aligned USER TEXT
;               (user_image .. user_image_end: code + strings shared by both tasks);
;               .data (kernel variables, task table, strings) follows, 4 KiB aligned.
;   0x00100000  IDT (256 gates x 8 bytes)
;   0x00101000  KPT      kernel page table: identity map of 0..4 MiB, PL0, writable
;   0x00102000  KPD      boot page directory (kernel only: PDE 0 = KPT)
;   0x00103000  T1_PD    task 1 page directory      0x00104000  T1_UPT  task 1 user page table
;   0x00105000  T2_PD    task 2 page directory      0x00106000  T2_UPT  task 2 user page table
;   0x00107000  T1_USTACK frame backing task 1's user stack page
;   0x00108000  T2_USTACK frame backing task 2's user stack page
;   0x00109000  T1_KSTACK task 1 kernel stack (one page, top = 0x0010a000 = its ksp0)
;   0x0010a000  T2_KSTACK task 2 kernel stack (top = 0x0010b000)
;   0x0010b000  BOOT_STACK (top = 0x0010c000)
;   0x0010c000  DISK_BUF  512-byte DMA buffer for the disk
;
; Linear layout of each task's address space (own page directory):
;   0x00000000-0x003fffff  kernel (PDE 0 -> shared KPT, PL0: ring 3 gets a protection #PF)
;   0x00400000-...         user text, read-only, PL3 (same frames in both tasks)
;   0x007ff000-0x007fffff  user stack, writable, PL3 (a different frame per task)
;   everything else        not present

IDT_BASE        = 0x00100000
KPT             = 0x00101000
KPD             = 0x00102000
T1_PD           = 0x00103000
T1_UPT          = 0x00104000
T2_PD           = 0x00105000
T2_UPT          = 0x00106000
T1_USTACK       = 0x00107000
T2_USTACK       = 0x00108000
T1_KSTACK       = 0x00109000
T2_KSTACK       = 0x0010a000
BOOT_STACK      = 0x0010b000
DISK_BUF        = 0x0010c000

UTEXT_BASE      = 0x00400000
UOFF            = UTEXT_BASE - user_image       ; add to a user_image label -> its ring-3 address
UTEXT_SIZE      = user_image_end - user_image
UTEXT_PAGES     = UTEXT_SIZE / PAGE_SIZE
UTEXT_END       = UTEXT_BASE + UTEXT_SIZE
USTACK_BASE     = 0x007ff000
USTACK_TOP      = 0x00800000

KERNEL_PROBE    = 0x00001000    ; a kernel address task B touches on purpose

; Scheduling
TIMER_PERIOD    = 400           ; ticks (= instructions) between timer interrupts
PIC_MASK_VALUE  = 0b110         ; IRQ0 (timer) enabled; console input and disk IRQs masked

; Trap frame, as built on the kernel stack by the CPU + isr stub + trap_common.
; Offsets from the frame pointer (the kernel sp after trap_common's pushes):
F_VEC           = 0             ; vector number (pushed by trap_common)
F_R1            = 4             ; r1..r14 at 4*n
F_R2            = 8
F_R3            = 12
F_R4            = 16
F_R0            = 60            ; pushed by the isr stub
F_ERR           = 64            ; --- pushed by the CPU ---
F_PC            = 68
F_CS            = 72
F_FLAGS         = 76
F_USP           = 80
FRAME_SIZE      = 84

; Task control block (the table `tasks` in kernel.s)
T_STATE         = 0             ; ST_*
T_FRAME         = 4             ; saved trap-frame pointer (on this task's kernel stack)
T_PD            = 8             ; page directory (physical) -> cr3
T_KTOP          = 12            ; kernel stack top -> ksp0
T_EXIT          = 16            ; exit code, or the vector that killed it
T_NAME          = 20            ; a letter
T_ID            = 24            ; task id (1, 2)
T_RUNS          = 28            ; times switched to
T_UPT           = 32            ; user page table (physical)
T_USTACK        = 36            ; user stack frame (physical)
T_ENTRY         = 40            ; user entry point (linear)
TASK_SIZE       = 44

ST_FREE         = 0
ST_RUNNABLE     = 1
ST_EXITED       = 2
ST_KILLED       = 3

; Syscall ABI: `int 0x80` (gate DPL 3), r1 = number, args r2..r4, result in r1
; (negative = error). All other registers are preserved.
VEC_SYSCALL     = 0x80
SYS_WRITE       = 1             ; write(r2 = buf, r3 = len) -> len | E_FAULT
SYS_YIELD       = 2             ; yield() -> 0
SYS_EXIT        = 3             ; exit(r2 = code), does not return
SYS_READ_SECTOR = 4             ; read_sector(r2 = sector, r3 = buf[512]) -> 512 | E_FAULT | E_INVAL | E_IO
SYS_GETPID      = 5             ; getpid() -> task id

E_IO            = -5
E_FAULT         = -14
E_INVAL         = -22
E_NOSYS         = -38

; sound: A correct kernel: nothing of the kernel is mapped at PL3 (see ../exposing.s)
.macro variant_mapping
        li      r2, USTACK
        li      r3, USTACK | PTE_P | PTE_W | PTE_PL3
.endm
.macro variant_syscall
.endm
        .include "../exposing.s"

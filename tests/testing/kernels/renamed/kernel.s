; renamed: broken_kernel's bug under other names: the page table KTAB is mapped user-writable (see ../exposing.s)
.macro variant_mapping
        li      r2, KTAB
        li      r3, KTAB | PTE_P | PTE_W | PTE_PL3
.endm
.macro variant_syscall
.endm
        .include "../exposing.s"

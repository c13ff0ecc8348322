; table_readable: The kernel page table is mapped user-readable (read-only, PL3) (see ../exposing.s)
.macro variant_mapping
        li      r2, KTAB
        li      r3, KTAB | PTE_P | PTE_PL3
.endm
.macro variant_syscall
.endm
        .include "../exposing.s"

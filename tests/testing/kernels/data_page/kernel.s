; data_page: The kernel's data page is mapped user-writable (see ../exposing.s)
.macro variant_mapping
        li      r2, KVARS
        li      r3, KVARS | PTE_P | PTE_W | PTE_PL3
.endm
.macro variant_syscall
.endm
        .include "../exposing.s"

; idt_page: The interrupt table's page is mapped user-writable (see ../exposing.s)
.macro variant_mapping
        li      r2, IDT
        li      r3, IDT | PTE_P | PTE_W | PTE_PL3
.endm
.macro variant_syscall
.endm
        .include "../exposing.s"

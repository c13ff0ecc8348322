; syscall_maps: sound at boot, but `int 0x81` maps the page table KTAB user-writable (see ../exposing.s)
.macro variant_mapping
        li      r2, USTACK
        li      r3, USTACK | PTE_P | PTE_W | PTE_PL3
.endm
.macro variant_syscall
        li      r1, KTAB
        li      r2, KTAB
        li      r3, KTAB | PTE_P | PTE_W | PTE_PL3
        call    pt_set
        invlpg  r2
.endm
        .include "../exposing.s"

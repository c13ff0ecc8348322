; idt_page: The interrupt table's page is mapped user-writable (see ../exposing.s)
BUG_PAGE = IDT
BUG_FLAGS = PTE_W | PTE_PL3
        .include "../exposing.s"

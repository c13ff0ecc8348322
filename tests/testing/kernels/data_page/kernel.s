; data_page: The kernel's data page is mapped user-writable (see ../exposing.s)
BUG_PAGE = KVARS
BUG_FLAGS = PTE_W | PTE_PL3
        .include "../exposing.s"

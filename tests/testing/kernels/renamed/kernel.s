; renamed: broken_kernel's bug under other names: the page table KTAB is mapped user-writable (see ../exposing.s)
BUG_PAGE = KTAB
BUG_FLAGS = PTE_W | PTE_PL3
        .include "../exposing.s"

; table_readable: The kernel page table is mapped user-readable (read-only, PL3) (see ../exposing.s)
BUG_PAGE = KTAB
BUG_FLAGS = PTE_PL3
        .include "../exposing.s"

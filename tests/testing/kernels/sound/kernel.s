; sound: A correct kernel: nothing of the kernel is mapped at PL3 (see ../exposing.s)
BUG_PAGE = USTACK
BUG_FLAGS = PTE_W | PTE_PL3
        .include "../exposing.s"

; layout.s — the virtual layout both ptbench kernels give the new address space.

USER_BASE       = 0x40000000            ; page i of the new address space: USER_BASE + i * 4 KiB
USER_PDI        = USER_BASE >> 22       ; its first directory slot (table j at slot USER_PDI + j)
DATA_BASE       = 0x00400000            ; pseudo-physical frame of page i: DATA_BASE + i * 4 KiB
MAX_TABLES      = 2                     ; MAX_N / 1024

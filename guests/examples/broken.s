start:  li    r1, 1
        add   r1, r2,
        jmp   nowhere
        addi  r1, r2, 70000
        hlt

; psum.s — a parallel sum: node i adds up its K numbers i·K+1 … (i+1)·K, then the partial sums
; are reduced over a binomial tree (round d = 1, 2, 4, …: a node with bit d set sends its sum
; to node − d and is done; the others add what node + d sends, on port 100 + d). Node 0 checks
; the total against K·N·(K·N + 1)/2 (modulo 2^32, as the machine adds) and prints it. K is read from the console input (a decimal
; number; 100 when there is none), so one guest serves light and compute-heavy runs.

start:
        li      sp, 0x40000
        call    read_k                  ; r1 = K
        mov     r13, r1
        li      r1, 0x30000
        call    net_init
        call    net_node
        mov     r8, r1                  ; me
        call    net_nodes
        mov     r9, r1                  ; N
        mul     r10, r8, r13
        addi    r10, r10, 1             ; first number
        add     r11, r10, r13           ; one past the last
        li      r12, 0                  ; the partial sum
.add:   cmp     r10, r11
        jae     .tree
        add     r12, r12, r10
        addi    r10, r10, 1
        jmp     .add
.tree:  li      r10, 1                  ; d
.round: cmp     r10, r9
        jae     .root
        tst     r8, r10
        jz      .gather
        li      r1, part                ; send the sum down the tree, done
        st      [r1], r12
        sub     r1, r8, r10
        addi    r2, r10, 100
        li      r3, part
        li      r4, 4
        call    net_send
        cli
        hlt
.gather:
        add     r1, r8, r10
        cmp     r1, r9
        jae     .next
        li      r1, part
        li      r2, 4
        addi    r3, r10, 100
        call    net_recv
        li      r1, part
        ld      r1, [r1]
        add     r12, r12, r1
.next:  shli    r10, r10, 1
        jmp     .round
.root:  mul     r1, r13, r9             ; K·N
        addi    r2, r1, 1
        andi    r3, r1, 1               ; halve the even factor first: the product is then
        cmpi    r3, 0                   ; right modulo 2^32, like the sum
        jnz     .odd
        shri    r1, r1, 1
        jmp     .prod
.odd:   shri    r2, r2, 1
.prod:  mul     r1, r1, r2
        cmp     r1, r12
        jnz     .bad
        li      r1, msg_ok
        call    puts
        mov     r1, r12
        call    putdec
        call    putnl
        cli
        hlt
.bad:   li      r1, msg_bad
        call    puts
        mov     r1, r12
        call    putdec
        call    putnl
        cli
        hlt

read_k:                                 ; r1 = the decimal number on the console, or 100
        li      r2, 0
        li      r3, 0                   ; digits seen
.next:  in      r1, PORT_CONSOLE_STATUS
        cmpi    r1, 0
        jz      .end
        in      r1, PORT_CONSOLE_DATA
        addi    r1, r1, -48
        cmpi    r1, 10
        jae     .next                   ; not a digit (unsigned compare): skip it
        li      r4, 10
        mul     r2, r2, r4
        add     r2, r2, r1
        addi    r3, r3, 1
        jmp     .next
.end:   mov     r1, r2
        cmpi    r3, 0
        jnz     .done
        li      r1, 100
.done:  ret

        .include "console.s"
        .include "idt.s"
        .include "net.s"

msg_ok:   .asciz "parallel sum: ok, "
msg_bad:  .asciz "parallel sum: BAD "
        .align  4
part:     .word 0

; mem.s — memory helpers (any ring; they only touch the memory they are given).
;
; Convention (see console.s): args r1..r4, result r1; r0 and r8..r14 preserved.
;
;   memset(r1 = dst, r2 = byte, r3 = len)          fill len bytes.        returns r1 = dst.  clobbers: r4, r5
;   memset32(r1 = dst, r2 = word, r3 = count)      fill count words; dst 4-aligned.
;                                                  returns r1 = dst.      clobbers: r3..r6
;   memcpy(r1 = dst, r2 = src, r3 = len)           copy len bytes (no overlap); uses word
;                                                  copies when dst, src and len are all 4-aligned.
;                                                  returns r1 = dst.      clobbers: r2..r6
;   strlen(r1 = string)                            returns r1 = length.   clobbers: r2, r3

memset:
        mov     r4, r1
        add     r5, r1, r3              ; end
.loop:  cmp     r4, r5
        jae     .done
        stb     [r4], r2
        addi    r4, r4, 1
        jmp     .loop
.done:  ret

memset32:
        mov     r4, r1
        shli    r3, r3, 2               ; bytes
        shri    r6, r3, 4               ; r6 = bytes & ~15 (whole 16-byte blocks)
        shli    r6, r6, 4
        add     r6, r1, r6              ; end of the unrolled part
        add     r5, r1, r3              ; end
.quad:  cmp     r4, r6
        jae     .tail
        st      [r4], r2
        st      [r4 + 4], r2
        st      [r4 + 8], r2
        st      [r4 + 12], r2
        addi    r4, r4, 16
        jmp     .quad
.tail:  cmp     r4, r5
        jae     .done
        st      [r4], r2
        addi    r4, r4, 4
        jmp     .tail
.done:  ret

memcpy:
        mov     r4, r1
        add     r5, r2, r3              ; source end
        or      r6, r1, r2
        or      r6, r6, r3
        andi    r6, r6, 3
        cmpi    r6, 0
        jnz     .bytes
.words: cmp     r2, r5
        jae     .done
        ld      r6, [r2]
        st      [r4], r6
        addi    r2, r2, 4
        addi    r4, r4, 4
        jmp     .words
.bytes: cmp     r2, r5
        jae     .done
        ldb     r6, [r2]
        stb     [r4], r6
        addi    r2, r2, 1
        addi    r4, r4, 1
        jmp     .bytes
.done:  ret

strlen:
        mov     r2, r1
.loop:  ldb     r3, [r2]
        cmpi    r3, 0
        jz      .done
        addi    r2, r2, 1
        jmp     .loop
.done:  sub     r1, r2, r1
        ret

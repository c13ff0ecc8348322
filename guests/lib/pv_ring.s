; pv_ring.s — the I/O ring protocol of the split drivers (docs/paravirtual-abi.md, "I/O rings"),
; shared by the front-ends (pv_front.s) and dom0's back-ends (guests/dom0/kernel.s).
; The Python model of the same protocol is vmm/paravirt/ioring.py.
;
; A ring page: req_prod 0x00, req_event 0x04, rsp_prod 0x08, rsp_event 0x0C (pv.s RING_*), the
; sides' private consumer counters published for inspection (rsp_cons 0x10: front-end, req_cons
; 0x14: back-end), 32 slots of 64 bytes at 0x40. Indices run freely (slot = index mod 32).
;
;   ring_slot(r1 = ring, r2 = index) -> r1 = address of the slot        clobbers: r2
;   ring_push(r1 = ring, r2 = new prod, r3 = offset of the prod field (RING_REQ_PROD or
;             RING_RSP_PROD), r4 = port) publishes the producer index and notifies the other
;             side over event channel r4 iff it asked (its *_event index lies in (old, new]).
;             -> r1 = 1 if it notified                              clobbers: r1..r6
;   evtchn_clear(r1 = shared_info, r2 = port)   clear the port's pending bit.  clobbers: r3..r5
;
; Needs pv.s.

RING_RSP_CONS           = 0x10          ; front-end's responses consumed (published)
RING_REQ_CONS           = 0x14          ; back-end's requests consumed (published)
; requests {id, op, sector/len, gref, offset, data...}; responses {id, status, len, data...}
REQ_ID                  = 0x00
REQ_OP                  = 0x04
REQ_ARG                 = 0x08          ; sector (block) or length (console)
REQ_GREF                = 0x0C
REQ_OFFSET              = 0x10
REQ_DATA                = 0x14          ; console bytes travel in the slot
RSP_ID                  = 0x00
RSP_STATUS              = 0x04
RSP_LEN                 = 0x08
REQ_DATA_MAX            = RING_SLOT_SIZE - REQ_DATA
OP_CONSOLE_WRITE        = 1
OP_BLOCK_READ           = 2

ring_slot:
        andi    r2, r2, RING_SIZE - 1
        shli    r2, r2, 6
        add     r1, r1, r2
        addi    r1, r1, RING_SLOTS
        ret

ring_push:
        add     r5, r1, r3
        ld      r6, [r5]                ; old producer index
        st      [r5], r2                ; publish (the slots were written before)
        ld      r5, [r5 + 4]            ; the other side's event index (req_event / rsp_event)
        sub     r5, r2, r5              ; new - event
        sub     r6, r2, r6              ; new - old
        cmp     r5, r6
        jae     .quiet                  ; unsigned: event not in (old, new]
        mov     r1, r4
        push    r2
        push    r3
        push    r4
        call    hyp_evtchn_send
        pop     r4
        pop     r3
        pop     r2
        li      r1, 1
        ret
.quiet: li      r1, 0
        ret

evtchn_clear:
        shri    r3, r2, 5
        shli    r3, r3, 2
        add     r3, r3, r1
        andi    r4, r2, 31
        li      r5, 1
        shl     r5, r5, r4
        not     r5, r5
        ld      r4, [r3 + SH_EVTCHN_PENDING]
        and     r4, r4, r5
        st      [r3 + SH_EVTCHN_PENDING], r4
        ret

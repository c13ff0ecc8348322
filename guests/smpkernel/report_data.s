; report_data.s — the strings of report.s, shared by smpkernel and its paravirtual port
; (guests/pvsmp): included in the .data section.

msg_locked:     .asciz "locked counter: "
msg_expected:   .asciz " (expected "
msg_close:      .asciz ")\n"
msg_unlocked:   .asciz "unlocked counter: "
msg_lost:       .asciz " ("
msg_lost_end:   .asciz " updates lost)\n"
msg_sum:        .asciz "parallel sum of squares 1..1024: "
msg_window:     .asciz "shared window before the remap: "
msg_window_after: .asciz "; after the TLB shootdown: "
msg_gen1:       .asciz " at generation 1, "
msg_gen2:       .asciz " at generation 2"
msg_ipis:       .asciz "reschedule IPIs taken: "
msg_shootdowns: .asciz ", TLB shootdowns: "
msg_done:       .asciz "\nsmpkernel: all threads done\n"

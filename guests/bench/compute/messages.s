; messages.s — the strings of body.s.

msg_head:       .asciz  "compute: "
msg_acc:        .asciz  " iterations, acc "
msg_x:          .asciz  ", x "

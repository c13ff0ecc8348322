"""The bundled scheduling policies, one file each (each defines ``POLICY``); see
`toyvisor.vmm.sched.policy` for the interface and docs/scheduling.md for what each costs."""

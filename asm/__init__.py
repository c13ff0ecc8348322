"""toyvisor.asm."""

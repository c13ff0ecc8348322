"""toyvisor.isa."""

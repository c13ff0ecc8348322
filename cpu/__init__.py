"""toyvisor.cpu."""

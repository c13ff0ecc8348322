"""toyvisor.tools."""

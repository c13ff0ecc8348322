"""toyvisor.vmm."""

"""Real backend pieces: QEMU guests, QMP, live migration, cgroup domains, namespace fabric."""

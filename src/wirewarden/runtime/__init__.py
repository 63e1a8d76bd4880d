"""A node's runtime: what runs beside the kernel (the reconciler loop, the collector, the
resolver) and the applier through which the control plane's changes reach it."""

"""k8s-netlab: the lab harness (config, rendering, lifecycle) and its pytest plugin."""

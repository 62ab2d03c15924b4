"""Workload drivers: place a "pod" with N "containers" on a node, learn its IP, run a command
in one of its containers, remove it. CNI-direct works on every lab; Kubernetes needs a cluster."""

"""Each pod-network backend's provisioning steps (lab/podnet/ says which module is whose)."""

"""The only code with side effects: local processes, vagrant, libvirt, ssh, kubectl, netns."""

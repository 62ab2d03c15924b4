"""The application: the command line, the lifecycle verbs, the nightly and the pytest plugin.
The composition root: the only place that wires lab/ (core and adapters), provision/ and e2e/
together."""

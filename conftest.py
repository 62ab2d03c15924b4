# Root conftest: registers the lab pytest plugin, nothing else.
pytest_plugins = ["lab.pytest_plugin"]

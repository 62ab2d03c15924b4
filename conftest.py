# Root conftest: registers the lab pytest plugin (the application's), nothing else.
pytest_plugins = ["app.pytest_plugin"]

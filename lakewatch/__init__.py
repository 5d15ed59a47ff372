"""lakewatch: the glue that ties the services together (settings, the stack runner, the CLI)."""

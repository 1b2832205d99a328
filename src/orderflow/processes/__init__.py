"""Running processes: the supervisor of `orderflow run` and logging set-up."""

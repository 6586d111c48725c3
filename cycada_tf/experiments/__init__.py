"""absl entry points: parse flags, build a config, call the runner."""

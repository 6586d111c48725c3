"""Command-line tools: data preparation and other one-off jobs around the experiments."""

"""Data: one TFRecord schema for every dataset, sources that write it, pipelines that read it."""

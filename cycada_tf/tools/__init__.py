"""The commands besides the experiments: cycada-prepare (prepare.py) and cycada-export (export.py)."""

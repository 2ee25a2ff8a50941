"""The torch-side `hc-studio` commands (`train`, `export`); each imports torch only in `run`."""

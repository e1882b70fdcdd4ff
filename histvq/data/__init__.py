"""Data: on-disk layout, raw sources, synthetic data, DataModules."""

"""Experiments and parameter sweeps as data: the registry of config/experiments/*.yaml, validated and resolved into
named runs (pure: reads files, writes nothing; torch-free)."""

"""The foundations every layer may use, torch-free: the typed run config, YAML reading, errors and exit codes, the
metrics contract, the node's name and the progress bar."""

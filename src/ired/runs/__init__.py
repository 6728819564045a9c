"""The run folder as storage, below training and evaluation: atomic files, the JSONL records, checkpoints and their
format, the run lock and state, the code a run trains with, its logs and the checks of the files a config names.
Torch-free except ``checkpoint`` (the dispatcher head imports the rest)."""

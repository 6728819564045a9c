"""The first bytes of a checkpoint file, shared by the loader (ired.checkpoint, torch) and the cheap parse-time
check of a pipeline's external checkpoints (ired.inputs, no torch)."""

MAGIC = b"IRED-CHECKPOINT "  # format 2: this, a JSON header line (format, bytes, sha256), then the torch.save payload
LEGACY_MAGIC = b"PK\x03\x04"  # format 1: a bare torch.save zip
MAX_HEADER = 4096  # the header line is shorter than this

"""``ired bench``: the training and inference speed of this machine against the FLOP floor
(``python -m ired.bench``)."""

"""``python -m ired ...``: the ``ired`` command with this interpreter (what the dispatcher's jobs run on a node)."""

import sys

from ired.cli import main

sys.exit(main())

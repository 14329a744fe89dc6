"""``python -m weightzoo``: the same as the ``weightzoo`` command."""

import sys

from .cli import main

sys.exit(main())

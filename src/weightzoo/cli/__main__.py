"""``python -m weightzoo.cli``: the ``weightzoo`` command."""

import sys

from . import main

sys.exit(main())

"""``python -m dsmtheory.cli``: the same as the ``dsmtheory`` console script."""

import sys

from . import main

sys.exit(main())

"""``python -m mbc_interp.cli``: the ``mbc`` command."""

import sys

from mbc_interp.cli import main

sys.exit(main())

"""`python -m scancap.cli`: the `scancap` command."""

import sys

from scancap.cli import main

sys.exit(main())

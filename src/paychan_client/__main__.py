"""`python -m paychan_client` runs the CLI."""

import sys

from .cli import main

sys.exit(main())

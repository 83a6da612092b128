"""``python -m lossnet``."""

import sys

from lossnet.cli import main

sys.exit(main())

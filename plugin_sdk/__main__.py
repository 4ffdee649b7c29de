"""``python -m plugin_sdk package.module:ClassName 'OPTION'``: serve a plugin over FD 3/4."""

import sys

from .runner import main

sys.exit(main())

"""``python -m hwsim_cli``: the same as the ``hwsim`` console script."""

import sys

from hwsim_cli import main

sys.exit(main())

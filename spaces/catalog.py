"""Imports every space module once, so that their @register_space decorators run.

Adding a space: write its module, then add it here.
"""

import spaces.autoformer
import spaces.autoprox
import spaces.micro
import spaces.nb201
import spaces.pit  # noqa: F401

"""Imports every space module once, so that their @register_space decorators run.

Adding a space: write its module, then add it here.
"""

import spaces.autoformer  # noqa: F401
import spaces.autoprox  # noqa: F401
import spaces.micro  # noqa: F401
import spaces.nb201  # noqa: F401
import spaces.pit  # noqa: F401

"""Imports every proxy module once, so that their @register decorators run.

Adding a proxy: write one decorated class in a module of `proxies/`, then list the module here.
"""

import proxies.counts  # noqa: F401
import proxies.dss  # noqa: F401
import proxies.fisher  # noqa: F401
import proxies.jacob_cov  # noqa: F401
import proxies.meco  # noqa: F401
import proxies.naswot  # noqa: F401
import proxies.ntk  # noqa: F401
import proxies.saliency  # noqa: F401
import proxies.synflow  # noqa: F401
import proxies.vintk  # noqa: F401
import proxies.zico  # noqa: F401

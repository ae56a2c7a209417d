"""Imports every proxy module once, so that their @register decorators run.

Adding a proxy: write one decorated class in a module of `proxies/`, then list the module here.
"""

import proxies.counts
import proxies.dss
import proxies.fisher
import proxies.jacob_cov
import proxies.meco
import proxies.naswot
import proxies.ntk
import proxies.saliency
import proxies.synflow
import proxies.vintk
import proxies.zico  # noqa: F401

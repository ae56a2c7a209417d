"""The one place that lists the proxy modules; importing it runs their @register decorators.

Adding a proxy: write one decorated class in a module of `proxies/`, then add the module's name
to PROXY_MODULES.
"""

import importlib

PROXY_MODULES = (
    "counts",
    "dss",
    "fisher",
    "jacob_cov",
    "meco",
    "naswot",
    "ntk",
    "saliency",
    "synflow",
    "vintk",
    "zico",
)

for module in PROXY_MODULES:
    importlib.import_module(f"proxies.{module}")

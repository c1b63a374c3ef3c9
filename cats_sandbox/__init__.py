"""A CATS API v3 sandbox: an in-memory, multi-site stand-in for api.catsone.com/v3.

It follows docs/cats-api-v3.md. Where the notes mark a fact as a guess or leave it open, a
site's config picks the answer (config.py; the defaults are the notes' answers) so client
code can be tested against each. Pure Python plus Werkzeug, and never imported by the
production apps: tests, benchmarks and `python -m cats_sandbox` (the demo) use it.
"""

from .app import SandboxApp
from .config import SITE_CONFIG_DEFAULTS, VARIANTS
from .control import FAULT_ACTIONS
from .delivery import signature
from .seed import (
    DEFAULT_JOB_STATUSES,
    DEMO_API_KEY,
    DEMO_CUSTOM_FIELDS,
    DEMO_SEED,
    STATUS_INTERESTED,
    STATUS_MESSAGED,
    STATUS_NOT_INTERESTED,
    STATUS_REPLIED,
    custom_field,
    demo_seed,
    general_workflow_statuses,
    job,
    make_seed,
    status,
    trigger,
    workflow,
)
from .server import SandboxServer, parse_rate_limit, serve
from .state import ApiError
from .webhooks import EVENTS

__all__ = [
    "DEFAULT_JOB_STATUSES",
    "DEMO_API_KEY",
    "DEMO_CUSTOM_FIELDS",
    "DEMO_SEED",
    "EVENTS",
    "FAULT_ACTIONS",
    "SITE_CONFIG_DEFAULTS",
    "STATUS_INTERESTED",
    "STATUS_MESSAGED",
    "STATUS_NOT_INTERESTED",
    "STATUS_REPLIED",
    "VARIANTS",
    "ApiError",
    "SandboxApp",
    "SandboxServer",
    "custom_field",
    "demo_seed",
    "general_workflow_statuses",
    "job",
    "make_seed",
    "parse_rate_limit",
    "serve",
    "signature",
    "status",
    "trigger",
    "workflow",
]

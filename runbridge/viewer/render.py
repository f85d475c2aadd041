"""HTML from the package's Jinja2 templates, every value escaped (autoescape on), so a metric
named ``<script>alert(1)</script>`` is shown as text wherever it appears."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from .svg import number

if TYPE_CHECKING:
    import jinja2


@functools.lru_cache(maxsize=1)
def environment() -> "jinja2.Environment":
    """The one template environment: package templates, autoescape, undefined names are errors."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("runbridge.viewer", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["number"] = number
    return env


def render(template: str, **context: Any) -> str:
    """The page `template` (a file in templates/) filled with `context`."""
    return environment().get_template(template).render(**context)

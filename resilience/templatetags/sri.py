"""Script and stylesheet tags with Subresource Integrity (resilience/static.py):

    {% load sri %}
    {% stylesheet "css/app.css" %}
    {% script "js/app.js" %}          (always defer: no script blocks parsing)
    {% htmx_scripts %}                (django-htmx's htmx copy; its debug helper in DEBUG)

They stand in for django-htmx's {% htmx_script %}, which writes no integrity."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.templatetags.static import static
from django.utils.html import format_html
from django.utils.safestring import SafeString

from resilience.static import integrity

register = template.Library()

HTMX = "django_htmx/htmx-2.min.js"
HTMX_DEBUG = "django_htmx/django-htmx.js"


@register.simple_tag
def stylesheet(path: str) -> SafeString:
    return format_html('<link rel="stylesheet" href="{}" integrity="{}">', static(path), integrity(path))


@register.simple_tag
def script(path: str, module: bool = False) -> SafeString:
    if module:  # module scripts are deferred by nature
        return format_html('<script type="module" src="{}" integrity="{}"></script>', static(path), integrity(path))
    return format_html('<script src="{}" integrity="{}" defer></script>', static(path), integrity(path))


@register.simple_tag
def htmx_scripts() -> SafeString:
    tags = script(HTMX)
    if settings.DEBUG:
        # django-htmx's helper that shows server error pages for htmx requests.
        tags += format_html(
            '<script src="{}" integrity="{}" data-debug="True" defer></script>',
            static(HTMX_DEBUG),
            integrity(HTMX_DEBUG),
        )
    return tags

"""The names of the calls app's cache tags, in one place: views name them in
`cached_view(tags=...)` templates, cache_wiring bumps them when data changes,
and billing bumps an organization's after a plan change. A leaf module, so
anything in calls may import it without an import cycle."""


def org_tag(organization_id: int) -> str:
    return f"org:{organization_id}"


def call_tag(call_id: int) -> str:
    return f"call:{call_id}"


def selection_tag(organization_id: int, user_id: int) -> str:
    return f"selection:{organization_id}:{user_id}"

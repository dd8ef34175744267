"""Parsing the analytics query string (?days= or ?from=&to=, rep, outcome,
sort) for the page and the API alike, into AnalyticsParams."""

from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.http import QueryDict
from django.utils import timezone

from analytics.report import LEADERBOARD_SORTS, MAX_RANGE_DAYS, AnalyticsParams
from analytics.rollups import local_tz
from calls.forms import check_year
from calls.models import NAMED_OUTCOMES
from calls.tenancy.models import Membership, Organization

RANGE_CHOICES = [("7", "Last 7 days"), ("30", "Last 30 days"), ("90", "Last 90 days"), ("custom", "Custom range")]
DEFAULT_DAYS = 30
SORT_CHOICES = [(f"{sign}{key}", f"{sign}{key}") for key in sorted(LEADERBOARD_SORTS) for sign in ("", "-")]


def local_today() -> date:
    return timezone.localtime(timezone.now(), local_tz()).date()


def org_reps(organization: Organization) -> list[tuple[int, str]]:
    """(user id, name) of the organization's members: who the rep filter accepts."""
    members = (
        Membership.objects.filter(organization=organization)
        .select_related("user")
        .order_by("user__first_name", "user__last_name", "user__username")
    )
    return [(m.user_id, m.user.get_full_name() or m.user.get_username()) for m in members]


# The query parameters AnalyticsForm reads (the page's and the API's cache key).
ANALYTICS_PARAMS = ("days", "from", "to", "rep", "outcome", "sort")


class AnalyticsForm(forms.Form):
    days = forms.ChoiceField(choices=RANGE_CHOICES, required=False, label="Range")
    rep = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Rep")
    outcome = forms.ChoiceField(choices=[("", "All outcomes"), *NAMED_OUTCOMES], required=False, label="Outcome")
    sort = forms.ChoiceField(choices=SORT_CHOICES, required=False, widget=forms.HiddenInput)

    def __init__(self, data: QueryDict, *, organization: Organization, **kwargs: object) -> None:
        # Spell out the range that applies, so the redisplayed form shows it.
        data = data.copy()
        if data.get("from") or data.get("to"):
            data["days"] = "custom"
        elif not data.get("days"):
            data["days"] = str(DEFAULT_DAYS)
        super().__init__(data, **kwargs)
        # "from" is a Python keyword, so these two are added by name.
        self.fields["from"] = forms.DateField(
            required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
        )
        self.fields["to"] = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
        self.reps = org_reps(organization)
        self.fields["rep"].choices = [("", "All reps"), *[(str(pk), name) for pk, name in self.reps]]
        self.fields["rep"].error_messages["invalid_choice"] = "That rep is not a member of this organization."

    def clean_from(self) -> date | None:
        return check_year(self.cleaned_data.get("from"))

    def clean_to(self) -> date | None:
        return check_year(self.cleaned_data.get("to"))

    def clean(self) -> dict:
        cleaned = super().clean()
        first, last, days = cleaned.get("from"), cleaned.get("to"), cleaned.get("days")
        if "from" in self.errors or "to" in self.errors or "days" in self.errors:
            return cleaned
        if first is not None or last is not None or days == "custom":
            if first is None:
                self.add_error("from", "Give the first day of the range (YYYY-MM-DD).")
            if last is None:
                self.add_error("to", "Give the last day of the range (YYYY-MM-DD).")
            if first is None or last is None:
                return cleaned
            if first > last:
                self.add_error("to", "The range ends before it starts: 'to' must be on or after 'from'.")
            elif (last - first).days + 1 > MAX_RANGE_DAYS:
                self.add_error(
                    "to", f"The range is {(last - first).days + 1} days; at most {MAX_RANGE_DAYS} are allowed."
                )
            cleaned["days"] = "custom"
        else:
            last = local_today()
            first = last - timedelta(days=int(days or DEFAULT_DAYS) - 1)
            cleaned["days"] = days or str(DEFAULT_DAYS)
        cleaned["first"], cleaned["last"] = first, last
        return cleaned

    def params(self) -> AnalyticsParams:
        data = self.cleaned_data
        return AnalyticsParams(
            first=data["first"],
            last=data["last"],
            rep_id=data.get("rep"),
            outcome=data.get("outcome") or None,
            sort=data.get("sort") or "-calls",
        )

    def field_errors(self) -> dict[str, list[str]]:
        return {name: [str(e) for e in errors] for name, errors in self.errors.items()}

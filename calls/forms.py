"""Forms of the calls pages: the dashboard's filter form (read from the query
string, and parse_listing, which turns a query string into the table's view
state through it), the bulk-action forms and the upload form."""

from __future__ import annotations

from datetime import date
from functools import cached_property
from typing import Any

import filetype
from django import forms
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import FileExtensionValidator
from django.http import QueryDict

from calls.billing.usage import upload_refusal
from calls.filters import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_SORT,
    MODES,
    PAGE_SIZES,
    SEARCH_MIN_LENGTH,
    SORT_COLUMNS,
    CallFilters,
    Listing,
    Sort,
)
from calls.models import NAMED_OUTCOMES, SENTIMENTS, Call
from calls.tenancy.models import Organization

SORT_LABELS = {"started": "Started", "duration": "Duration", "score": "Score", "sentiment": "Sentiment"}
SORT_CHOICES = [
    (f"{prefix}{key}", f"{SORT_LABELS[key]} {'↓' if prefix else '↑'}") for key in SORT_COLUMNS for prefix in ("-", "")
]
OUTCOME_CHOICES = [("", "Any outcome"), *NAMED_OUTCOMES]


MAX_USER_ID = 2**31 - 1


def check_year(day: date | None) -> date | None:
    # Keeps date arithmetic (the day after "to") far from date.max.
    if day is not None and not 1900 <= day.year <= 2999:
        raise forms.ValidationError("Enter a date between the years 1900 and 2999.")
    return day


class CallListForm(forms.Form):
    """The dashboard's filters, sort, page size and mode as GET parameters."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Title, customer or company", "autocomplete": "off"}
        ),
    )
    status = forms.MultipleChoiceField(choices=Call.Status.choices, required=False, widget=forms.CheckboxSelectMultiple)
    outcome = forms.ChoiceField(choices=OUTCOME_CHOICES, required=False)
    # User ids are integers in every database; a larger number is a 400, never an overflow.
    rep = forms.IntegerField(required=False, min_value=1, max_value=MAX_USER_ID, widget=forms.Select)
    started_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    started_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    score_min = forms.IntegerField(
        label="Score from", required=False, min_value=0, max_value=100, widget=forms.NumberInput(attrs={"size": 4})
    )
    score_max = forms.IntegerField(
        label="Score to", required=False, min_value=0, max_value=100, widget=forms.NumberInput(attrs={"size": 4})
    )
    sentiment = forms.ChoiceField(
        choices=[("", "Any sentiment"), *[(s, s.capitalize()) for s in SENTIMENTS]], required=False
    )
    sort = forms.ChoiceField(choices=SORT_CHOICES, required=False, initial=DEFAULT_SORT)
    size = forms.TypedChoiceField(
        label="Rows", choices=[(n, str(n)) for n in PAGE_SIZES], coerce=int, required=False, empty_value=None
    )
    mode = forms.ChoiceField(
        choices=list(zip(MODES, ("Pages", "Infinite scroll"), strict=True)), required=False, initial="pages"
    )

    def __init__(self, *args: Any, reps: list[tuple[int, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rep"].widget.choices = [("", "Any rep"), *(reps or [])]
        self.fields["size"].initial = DEFAULT_PAGE_SIZE

    def clean_q(self) -> str:
        text = " ".join(self.cleaned_data.get("q", "").split())
        if 0 < len(text) < SEARCH_MIN_LENGTH:
            raise forms.ValidationError(f"Type at least {SEARCH_MIN_LENGTH} characters to search.")
        return text

    def clean_started_from(self) -> date | None:
        return check_year(self.cleaned_data.get("started_from"))

    def clean_started_to(self) -> date | None:
        return check_year(self.cleaned_data.get("started_to"))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        low, high = data.get("score_min"), data.get("score_max")
        if low is not None and high is not None and low > high:
            self.add_error("score_max", "“Score to” must not be below “Score from”.")
        start, end = data.get("started_from"), data.get("started_to")
        if start is not None and end is not None and start > end:
            self.add_error("started_to", "“To” must not be before “From”.")
        return data


def parse_listing(query: QueryDict) -> Listing:
    """The view state from a query string. Invalid values are left out of the
    state and reported in `errors` (field → messages), never raised. Repeated
    statuses count once, so equal filters give equal query strings."""
    form = CallListForm(query)
    form.is_valid()
    data = form.cleaned_data
    filters = CallFilters(
        statuses=tuple(sorted(set(data.get("status") or ()))),
        outcome=data.get("outcome") or None,
        rep=data.get("rep"),
        started_from=data.get("started_from"),
        started_to=data.get("started_to"),
        score_min=data.get("score_min"),
        score_max=data.get("score_max"),
        sentiment=data.get("sentiment") or None,
        q=data.get("q") or "",
    )
    return Listing(
        filters=filters,
        sort=Sort.parse(data.get("sort") or DEFAULT_SORT),
        size=data.get("size") or DEFAULT_PAGE_SIZE,
        mode=data.get("mode") or "pages",
        cursor=query.get("cursor", "").strip(),
        errors={name: list(messages) for name, messages in form.errors.items()},
    )


def filters_from_querystring(querystring: str) -> CallFilters:
    return parse_listing(QueryDict(querystring)).filters


class BulkOutcomeForm(forms.Form):
    outcome = forms.ChoiceField(choices=[(v, label) for v, label in Call.Outcome.choices])


# What the speech-to-text provider accepts. Browsers report audio content types
# inconsistently, so the name's extension is checked and the real type is
# sniffed from the first bytes (filetype): a renamed .exe or text is refused.
RECORDING_EXTENSIONS = ("mp3", "wav", "m4a", "mp4", "ogg", "oga", "webm", "flac", "aac")
SNIFFED_RECORDING_TYPES = frozenset({"mp3", "wav", "m4a", "mp4", "ogg", "webm", "flac", "aac"})
MAX_RECORDING_MB = 200
# The whole upload request: the recording plus the form's few text fields.
MAX_UPLOAD_BODY = MAX_RECORDING_MB * 1024 * 1024 + 64 * 1024


def sniff_recording(recording: UploadedFile) -> str | None:
    """The audio format the file's first bytes say it is (an extension), or None."""
    recording.seek(0)
    head = recording.read(512)
    recording.seek(0)
    kind = filetype.guess(head)
    return kind.extension if kind is not None and kind.extension in SNIFFED_RECORDING_TYPES else None


class CallUploadForm(forms.ModelForm):
    """A new call: its facts and its recording. The rep is one of the organization's members."""

    recording = forms.FileField(
        validators=[FileExtensionValidator(RECORDING_EXTENSIONS)],
        help_text=f"Audio: {', '.join(RECORDING_EXTENSIONS)}; at most {MAX_RECORDING_MB} MB.",
    )
    started_at = forms.DateTimeField(
        label="Started", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), help_text="When the call began."
    )

    class Meta:
        model = Call
        fields = ["title", "customer_name", "customer_company", "direction", "started_at", "rep", "recording"]

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["rep"].queryset = get_user_model().objects.filter(memberships__organization=organization)
        self.fields["rep"].required = True
        self.fields["rep"].label_from_instance = lambda user: user.get_full_name() or user.get_username()

    @cached_property
    def over_limit_message(self) -> str | None:
        """Why the organization cannot upload now (its plan's minutes are used), or None."""
        return upload_refusal(self.organization)

    def clean(self) -> dict[str, Any]:
        # The organization's minutes first: an upload over the plan is refused whatever its fields say.
        if self.over_limit_message:
            raise forms.ValidationError(self.over_limit_message, code="over_limit")
        return super().clean()

    def clean_recording(self) -> UploadedFile:
        recording = self.cleaned_data["recording"]
        if recording.size == 0:
            raise forms.ValidationError("This file is empty.")
        if recording.size > MAX_RECORDING_MB * 1024 * 1024:
            raise forms.ValidationError(f"This file is larger than {MAX_RECORDING_MB} MB.")
        if sniff_recording(recording) is None:
            raise forms.ValidationError(
                "This file is not an audio recording we can read. Accepted: "
                f"{', '.join(RECORDING_EXTENSIONS)} (the file's content is checked, not just its name)."
            )
        return recording

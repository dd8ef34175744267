"""The endpoint form of the webhook settings pages."""

from __future__ import annotations

from django import forms

from calls.webhooks.destinations import DestinationRefused, check_url_and_host
from calls.webhooks.models import EventType, WebhookEndpoint

# An organization's endpoints are few; this bounds what one organization can make CallIQ send.
MAX_ENDPOINTS = 10


class EndpointForm(forms.ModelForm):
    url = forms.URLField(
        label="URL",
        max_length=2000,
        assume_scheme="https",
        help_text="https only. Private, loopback and link-local addresses are refused.",
    )
    events = forms.MultipleChoiceField(
        label="Events",
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one event to send."},
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "events"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            check_url_and_host(url)
        except DestinationRefused as exc:
            raise forms.ValidationError(str(exc)) from exc
        return url


class EndpointEditForm(EndpointForm):
    is_enabled = forms.BooleanField(label="Enabled: send events to this endpoint", required=False)

    class Meta(EndpointForm.Meta):
        fields = ["url", "description", "events"]

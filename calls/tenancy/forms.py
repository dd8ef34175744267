"""Forms of the account pages."""

from __future__ import annotations

from datetime import timedelta

from django import forms

# Lifetimes a person can pick for a new token; "never" is allowed but not the default.
EXPIRY_CHOICES = [("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year"), ("never", "Never")]
DEFAULT_EXPIRY = "365"


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What uses this token, e.g. “CRM sync”.",
        widget=forms.TextInput(attrs={"placeholder": "CRM sync", "autocomplete": "off"}),
    )
    expires_in = forms.ChoiceField(
        label="Expires after", choices=EXPIRY_CHOICES, initial=DEFAULT_EXPIRY, required=False
    )

    def lifetime(self) -> timedelta | None:
        """The chosen lifetime (None: never expires); a missing choice means the default."""
        choice = self.cleaned_data.get("expires_in") or DEFAULT_EXPIRY
        return None if choice == "never" else timedelta(days=int(choice))

"""Forms of the account pages."""

from django import forms


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What uses this token, e.g. “CRM sync”.",
        widget=forms.TextInput(attrs={"placeholder": "CRM sync", "autocomplete": "off"}),
    )

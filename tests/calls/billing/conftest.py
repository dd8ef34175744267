import pytest
from django.test import override_settings

from tests.calls.billing.helpers import SECRET


@pytest.fixture(autouse=True)
def _paddle_secret(settings):
    providers = {name: dict(config) for name, config in settings.PROVIDERS.items()}
    providers["paddle"]["webhook_secret"] = SECRET
    with override_settings(PROVIDERS=providers, PADDLE_WEBHOOK_TOLERANCE_SECONDS=300):
        yield

"""WSGI entry point (gunicorn calliq.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calliq.settings")
application = get_wsgi_application()

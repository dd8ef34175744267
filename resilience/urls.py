from django.urls import path

from resilience import views

app_name = "monitoring"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("health", views.health, name="health"),
]

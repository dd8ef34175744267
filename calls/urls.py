"""Calls pages: the dashboard, its selection and bulk actions, call detail."""

from django.urls import path

from calls import recordings, search_views, views

app_name = "calls"

urlpatterns = [
    path("", views.call_list, name="list"),
    path("upload/", views.call_upload, name="upload"),
    path("search/", search_views.search_page, name="search"),
    path("selection/", views.selection_update, name="select"),
    path("selection/export/", views.selection_export, name="export"),
    path("selection/outcome/", views.selection_outcome, name="bulk_outcome"),
    path("selection/delete/", views.selection_delete, name="bulk_delete"),
    path("<int:call_id>/", views.call_detail, name="detail"),
    # Signed, short-lived, for the signing user while a member (calls/recordings.py).
    path("<int:call_id>/recording/", recordings.recording, name="recording"),
    path("<int:call_id>/recording/link/", recordings.recording_link, name="recording_link"),
]

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from . import api

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("auth/", include("social_django.urls", namespace="social")),
    path("api/v1/contacts", api.contacts_endpoint, name="api-contacts"),
    path("api/v1/events", api.events_endpoint, name="api-events"),
]

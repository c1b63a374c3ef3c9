from django.contrib import admin
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from . import api, extensions


def favicon(request):
    # Browsers ask for it wherever a page names no icon (an API answer, say).
    return HttpResponsePermanentRedirect(static("interseller/favicon.svg"))


urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    path("auth/", include("social_django.urls", namespace="social")),
    path("api/v1/contacts", api.contacts_endpoint, name="api-contacts"),
    path("api/v1/events", api.events_endpoint, name="api-events"),
    path("api/v1/enrollments", api.enrollments_endpoint, name="api-enrollments"),
    # Integrations' own pages (e.g. cats_sync's webhook receiver), registered in ready().
    *extensions.extension_urls(),
]

"""Request guards that hold for every view, ours and third-party admins alike."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

MSG_NUL_IN_QUERY = "A request parameter contains a NUL character, which nothing here accepts."


class RefuseNulInQueryMiddleware:
    """A NUL in a query string reaches the database as a filter value, and PostgreSQL
    refuses it with an error (a 500). No page of ours has a use for it: answer 400."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                return HttpResponseBadRequest(MSG_NUL_IN_QUERY, content_type="text/plain")
        return self.get_response(request)

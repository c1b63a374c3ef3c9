"""The one page of the integration outside the admin: the receiver CATS delivers webhooks to.
Thin: the checks, storing and processing are services.webhooks'."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .services.webhooks import MAX_BODY_BYTES, webhook_receive


@csrf_exempt
@require_POST
def webhook_receiver(request: HttpRequest, token: str) -> JsonResponse:
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        return JsonResponse({"message": "Too large."}, status=413)
    # The raw bytes: the signature covers them exactly as sent.
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        return JsonResponse({"message": "Too large."}, status=413)
    received = webhook_receive(
        token=token,
        body=body,
        request_id=request.headers.get("X-Request-Id", ""),
        signature=request.headers.get("X-Signature", ""),
    )
    return JsonResponse({"message": received.message}, status=received.status)


def urlpatterns() -> list:
    return [path("cats/webhooks/<str:token>", webhook_receiver, name="cats-webhook")]

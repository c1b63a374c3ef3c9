from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def contacts_endpoint(request):
    return JsonResponse({"error": "not implemented"}, status=501)


@csrf_exempt
def events_endpoint(request):
    return JsonResponse({"error": "not implemented"}, status=501)

"""Account pages (API tokens, organization switcher) and the error pages."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from calliq.decorators import organization_required
from calliq.forms import ApiTokenForm
from calliq.http import AuthedRequest, OrgRequest
from calliq.middleware import ORGANIZATION_SESSION_KEY, api_error
from calls.models import ApiToken


@require_http_methods(["GET", "POST"])
@organization_required
def token_list(request: OrgRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    new_token = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            _, new_token = ApiToken.issue(
                user=request.user, organization=request.organization, name=form.cleaned_data["name"]
            )
            form = ApiTokenForm()
        else:
            status = 400
    tokens = ApiToken.objects.filter(user=request.user).select_related("organization")
    response = render(
        request, "accounts/tokens.html", {"form": form, "tokens": tokens, "new_token": new_token}, status=status
    )
    # The one page that shows a raw token must never be stored by a cache.
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@login_required
def token_revoke(request: AuthedRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    token.revoke()
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("tokens")


@require_POST
@login_required
def switch_organization(request: AuthedRequest) -> HttpResponse:
    wanted = request.POST.get("organization", "")
    membership = next((m for m in request.memberships if str(m.organization_id) == wanted), None)
    if membership is None:
        return render(request, "400.html", {"message": "You are not a member of that organization."}, status=400)
    request.session[ORGANIZATION_SESSION_KEY] = membership.organization_id
    messages.success(request, f"Now working in {membership.organization.name}.")
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = "calls:list"
    return redirect(next_url)


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return api_error(400, "bad_request", "The request could not be understood.")
    return render(request, "400.html", status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return api_error(403, "forbidden", "You do not have access to this resource.")
    return render(request, "403.html", status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if wants_json(request):
        return api_error(404, "not_found", "Nothing here: it does not exist or is not yours.")
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # No template context processors here: the failure may be in one of them.
    if wants_json(request):
        return JsonResponse(
            {"error": {"code": "server_error", "message": "Something broke on our side.", "fields": {}}}, status=500
        )
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)

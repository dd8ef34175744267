"""Account pages of the tenancy layer: personal API tokens and the organization switcher."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from calls.tenancy.decorators import organization_required
from calls.tenancy.forms import ApiTokenForm
from calls.tenancy.http import AuthedRequest, OrgRequest
from calls.tenancy.middleware import ORGANIZATION_SESSION_KEY
from calls.tenancy.models import ApiToken


@require_http_methods(["GET", "POST"])
@organization_required
def token_list(request: OrgRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    new_token = None
    status = 200
    if request.method == "POST":
        active = ApiToken.objects.filter(user=request.user).active().count()
        if form.is_valid() and active >= settings.CALLIQ_API_TOKENS_PER_USER:
            form.add_error(
                None,
                f"You already have {active} active tokens, the most one person may hold: "
                "revoke one you no longer use, then create the new one.",
            )
        if form.is_valid():
            _, new_token = ApiToken.issue(
                user=request.user,
                organization=request.organization,
                name=form.cleaned_data["name"],
                lifetime=form.lifetime(),
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

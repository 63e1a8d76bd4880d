"""Dashboard pages of network policy: a peer's policy and usage, bulk policy on the peer
table, custom ACL profiles."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from wirewarden.bootstrap import Container
from wirewarden.domain.classify.verdict import APPS
from wirewarden.services.errors import ServiceError
from wirewarden.services.schemas import AclRuleIn, PeerOut, PeerUpdate, ProfileIn
from wirewarden.web.deps import RowId
from wirewarden.web.ui import forms, units
from wirewarden.web.ui.auth import Admin, App
from wirewarden.web.ui.templating import page, redirect
from wirewarden.web.ui.viewer import Viewer

router = APIRouter(include_in_schema=False)
POLICY_FIELDS = (
    "acl",
    "dns_policy",
    "rate_down_mbit",
    "rate_up_mbit",
    "data_cap_gb",
    "cap_reset_day",
    "expose_ports",
)
# The bulk form's DNS choice that clears a peer's own policy (it follows its tenant's).
INHERIT = "-"
# The form's fields (Mbit/s, GB) and the API fields they fill (kbit/s, bytes).
RATE_FIELDS = (("rate_down_mbit", "rate_down_kbit"), ("rate_up_mbit", "rate_up_kbit"))
CAP_FIELD = ("data_cap_gb", "data_cap_bytes")


# ---------------------------------------------------------------- one peer


def policy_form_data(peer: PeerOut) -> dict[str, str]:
    return {
        "acl": peer.acl,
        "mesh": "on" if peer.mesh else "",
        "dns_policy": peer.dns_policy or "",
        "rate_down_mbit": units.mbit_text(peer.rate_down_kbit),
        "rate_up_mbit": units.mbit_text(peer.rate_up_kbit),
        "data_cap_gb": units.gb_text(peer.data_cap_bytes),
        "cap_reset_day": str(peer.cap_reset_day),
        "expose_ports": peer.expose_ports,
        "block_apps": ",".join(peer.block_apps),
    }


def policy_payload(data: dict[str, str], errors: forms.Errors) -> dict[str, object]:
    """Form text as PATCH fields: an empty limit or cap means none (null)."""
    payload: dict[str, object] = {
        "acl": data.get("acl") or "full",
        "mesh": data.get("mesh") == "on",
        "dns_policy": data.get("dns_policy") or None,
    }
    payload["cap_reset_day"] = data.get("cap_reset_day") or 1
    payload["expose_ports"] = data.get("expose_ports", "")
    if "block_apps" in data:  # the one peer's form (the bulk form leaves them alone)
        payload["block_apps"] = [a for a in data["block_apps"].split(",") if a]
    for field, api, parse in (
        *((f, a, units.parse_mbit) for f, a in RATE_FIELDS),
        (*CAP_FIELD, units.parse_gb),
    ):
        text = data.get(field, "")
        try:
            payload[api] = (parse(text) or None) if text else None
        except ValueError as exc:
            errors[field] = str(exc)
    return payload


@router.get("/peers/{peer_id}/policy", response_class=HTMLResponse)
def edit_policy(request: Request, app: App, viewer: Admin, peer_id: RowId) -> Response:
    peer = app.peers.get(peer_id, viewer.actor)
    return _policy_form(request, app, viewer, peer, policy_form_data(peer), {})


@router.post("/peers/{peer_id}/policy", response_class=HTMLResponse)
def save_policy(
    request: Request, app: App, viewer: Admin, peer_id: RowId, form: forms.Posted
) -> Response:
    peer = app.peers.get(peer_id, viewer.actor)
    data = {**forms.values(form, POLICY_FIELDS), "mesh": _checked(form, "mesh")}
    data["block_apps"] = ",".join(str(a) for a in form.getlist("block_apps"))
    errors: forms.Errors = {}
    payload = policy_payload(data, errors)
    body = forms.build(lambda: PeerUpdate.model_validate(payload), errors)
    if body is None or errors:
        _rename_cap_error(errors)
        return _policy_form(request, app, viewer, peer, data, errors, 422)
    try:
        app.peers.update(peer_id, body, viewer.actor)
    except ServiceError as exc:
        status = forms.service_error(exc, errors)
        _rename_cap_error(errors)
        return _policy_form(request, app, viewer, peer, data, errors, status)
    return redirect(f"/peers/{peer_id}", f"Policy of {peer.display_name} saved.")


# What a rejected value means in the form's own units (the schema speaks kbit/s and bytes).
_UNIT_ERRORS = {
    "rate_down_kbit": ("rate_down_mbit", "Between 0.008 and 100000 Mbit/s, or empty for no limit."),
    "rate_up_kbit": ("rate_up_mbit", "Between 0.008 and 100000 Mbit/s, or empty for no limit."),
    "data_cap_bytes": ("data_cap_gb", "More than 0 GB, or empty for no cap."),
}


def _rename_cap_error(errors: forms.Errors) -> None:
    for api, (field, message) in _UNIT_ERRORS.items():
        if api in errors:
            errors.pop(api)
            errors.setdefault(field, message)


def _checked(form: FormData, name: str) -> str:
    return "on" if form.get(name) == "on" else ""


def _policy_form(
    request: Request,
    app: Container,
    viewer: Viewer,
    peer: PeerOut,
    data: dict[str, str],
    errors: forms.Errors,
    status: int = 200,
) -> Response:
    return page(
        request,
        "peer_policy_form.html",
        viewer,
        status,
        peer=peer,
        form=data,
        errors=errors,
        profiles=[p.name for p in app.profiles.list()],
        dns_policies=[p.name for p in app.dns.list_policies(viewer.actor)],
        apps=APPS,
        blocked=set(data.get("block_apps", "").split(",")),
        back=f"/peers/{peer.id}",
    )


@router.post("/peers/{peer_id}/usage/reset")
def reset_usage(
    request: Request, app: App, viewer: Admin, peer_id: RowId, _: forms.Posted
) -> Response:
    app.usage.reset(peer_id, viewer.actor)
    return redirect(f"/peers/{peer_id}", "Usage reset: the cap counts from zero again.")


# ---------------------------------------------------------------- bulk


@router.post("/interfaces/{name}/policy", response_class=HTMLResponse)
def bulk_policy(
    request: Request, app: App, viewer: Admin, name: str, form: forms.Posted
) -> Response:
    """The same policy change for the peers ticked in the table; empty fields stay as they
    are, 0 removes a limit or cap."""
    app.interfaces.get(name, viewer.actor)  # 404 outside the viewer's tenant, form or not
    ids = [int(v) for v in form.getlist("peer") if isinstance(v, str) and v.isdigit()]
    changes: dict[str, object] = {}
    data = forms.values(form, (*POLICY_FIELDS, "mesh"))
    if data.get("acl"):
        changes["acl"] = data["acl"]
    if data.get("mesh") in ("on", "off"):
        changes["mesh"] = data["mesh"] == "on"
    if data.get("dns_policy"):
        changes["dns_policy"] = None if data["dns_policy"] == INHERIT else data["dns_policy"]
    if form.get("set_block_apps") == "on":
        # The classes named by unknown values are refused by the schema, naming the field.
        changes["block_apps"] = [v for v in form.getlist("block_apps") if isinstance(v, str)]
    errors: forms.Errors = {}
    for field, api, parse in (
        *((f, a, units.parse_mbit) for f, a in RATE_FIELDS),
        (*CAP_FIELD, units.parse_gb),
    ):
        if data.get(field):
            try:
                changes[api] = parse(data[field]) or None  # 0 removes the limit or cap
            except ValueError as exc:
                errors[field] = str(exc)
    body = None if errors else forms.build(lambda: PeerUpdate.model_validate(changes), errors)
    _rename_cap_error(errors)
    if body is None or not ids:
        if not ids:
            errors["form"] = "Tick the peers to change in the table first."
        return _bulk_result(request, viewer, name, [], errors)
    done, failed = [], {}
    for peer_id in ids:
        try:
            peer = app.peers.get(peer_id, viewer.actor)
            if peer.interface != name:
                continue
            done.append(app.peers.update(peer_id, body, viewer.actor).display_name)
        except ServiceError as exc:
            failed[str(peer_id)] = exc.message
    return _bulk_result(request, viewer, name, done, failed)


def _bulk_result(
    request: Request, viewer: Viewer, name: str, done: list[str], errors: forms.Errors
) -> Response:
    status = 200 if done or not errors else 422
    labels = {"rate_down_mbit": "Download limit", "rate_up_mbit": "Upload limit"}
    labels |= {"data_cap_gb": "Data cap", "acl": "Access", "mesh": "Mesh", "dns_policy": "DNS"}
    return page(
        request,
        "bulk_policy_result.html",
        viewer,
        status,
        iface=name,
        done=done,
        errors=errors,
        labels=labels,
    )


# ---------------------------------------------------------------- profiles


def rules_text(rules: list[AclRuleIn]) -> str:
    lines = []
    for r in rules:
        parts = [r.action, r.proto, r.cidr, *([r.ports] if r.ports else [])]
        lines.append(" ".join(parts))
    return "\n".join(lines)


def parse_rules(text: str, errors: forms.Errors) -> list[dict[str, str]]:
    """One rule a line: `allow|deny [any|tcp|udp|icmp] CIDR [PORT or LOW-HIGH]`."""
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        rule = {"action": words[0]}
        rest = words[1:]
        if rest and rest[0] in ("any", "tcp", "udp", "icmp"):
            rule["proto"] = rest.pop(0)
        if not rest or len(rest) > 2:
            errors.setdefault("rules", f"line {number}: allow|deny [proto] CIDR [ports]")
            continue
        rule["cidr"] = rest[0]
        if len(rest) == 2:
            rule["ports"] = rest[1]
        rules.append(rule)
    return rules


@router.get("/acl-profiles", response_class=HTMLResponse)
def profiles_page(request: Request, app: App, viewer: Admin) -> Response:
    return page(
        request,
        "acl_profiles.html",
        viewer,
        nav="acl",
        profiles=app.profiles.list(),
        rules_text=rules_text,
    )


@router.get("/acl-profiles/new", response_class=HTMLResponse)
def new_profile(request: Request, viewer: Admin) -> Response:
    return _profile_form(request, viewer, None, {"default": "deny"}, {})


@router.get("/acl-profiles/{name}", response_class=HTMLResponse)
def edit_profile(request: Request, app: App, viewer: Admin, name: str) -> Response:
    found = app.profiles.get(name)
    data = {"name": found.name, "rules": rules_text(found.rules), "default": found.default}
    return _profile_form(request, viewer, name, data, {})


@router.post("/acl-profiles/new", response_class=HTMLResponse)
def create_profile(request: Request, app: App, viewer: Admin, form: forms.Posted) -> Response:
    return _save_profile(request, app, viewer, None, form)


@router.post("/acl-profiles/{name}", response_class=HTMLResponse)
def save_profile(
    request: Request, app: App, viewer: Admin, name: str, form: forms.Posted
) -> Response:
    return _save_profile(request, app, viewer, name, form)


def _save_profile(
    request: Request, app: Container, viewer: Viewer, existing: str | None, form: FormData
) -> Response:
    data = forms.values(form, ("name", "rules", "default"))
    name = existing or data.get("name", "")
    errors: forms.Errors = {}
    rules = parse_rules(data.get("rules", ""), errors)
    body = forms.build(
        lambda: ProfileIn.model_validate({"rules": rules, "default": data.get("default", "deny")}),
        errors,
    )
    if body is None or errors:
        return _profile_form(request, viewer, existing, data, _rules_errors(errors), 422)
    try:
        app.profiles.put(name, body, viewer.actor)
    except ServiceError as exc:
        status = forms.service_error(exc, errors)
        return _profile_form(request, viewer, existing, data, _rules_errors(errors), status)
    return redirect("/acl-profiles", f"Profile {name} saved.")


def _rules_errors(errors: forms.Errors) -> forms.Errors:
    """Errors of one rule (rules[2]) shown on the rules box."""
    out: forms.Errors = {}
    for field, message in errors.items():
        out.setdefault("rules" if field.startswith("rules") else field, message)
    return out


@router.post("/acl-profiles/{name}/delete")
def delete_profile(
    request: Request, app: App, viewer: Admin, name: str, _: forms.Posted
) -> Response:
    app.profiles.delete(name, viewer.actor)
    return redirect("/acl-profiles", f"Profile {name} deleted.")


def _profile_form(
    request: Request,
    viewer: Viewer,
    existing: str | None,
    data: dict[str, str],
    errors: forms.Errors,
    status: int = 200,
) -> Response:
    return page(
        request,
        "acl_profile_form.html",
        viewer,
        status,
        nav="acl",
        existing=existing,
        form=data,
        errors=errors,
    )

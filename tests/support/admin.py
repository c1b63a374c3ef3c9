"""The Django admin as a browser uses it: URLs, the data a change form posts back, the errors
it shows, actions on selected rows, and the messages after a redirect."""

from __future__ import annotations

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.urls import reverse


def url(model: str, view: str = "changelist", *args, app: str = "interseller") -> str:
    return reverse(f"admin:{app}_{model}_{view}", args=args)


def cats_url(model: str, view: str = "changelist", *args) -> str:
    return url(model, view, *args, app="cats_sync")


def page_data(response) -> dict:
    """What the browser would post back for a rendered change form, inlines included."""
    data: dict = {}

    def add(form) -> None:
        for bf in form:
            value = bf.value()
            if value is None or value is False:
                continue
            if value is True:
                data[bf.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[bf.html_name] = [str(v) for v in value]
            else:
                data[bf.html_name] = str(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


def form_errors(response) -> list[str]:
    form = response.context["adminform"].form
    return [str(m) for errors in form.errors.values() for m in errors]


def inline_errors(response) -> list[str]:
    found = []
    for inline in response.context["inline_admin_formsets"]:
        for form in inline.formset.forms:
            found += [str(m) for errors in form.errors.values() for m in errors]
    return found


def act(client, changelist: str, action: str, ids, *, follow: bool = False, **extra):
    """Run an admin action on the rows with these ids, as the changelist's form posts it."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(i) for i in ids], "index": "0"}
    data.update(extra)
    return client.post(changelist, data, follow=follow)


def message_texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def change_post(client, account, **changes):
    """Post a CATS connection's change page back as rendered, with `changes` (None drops a
    field, as an unticked box or an emptied select does)."""
    page = client.get(cats_url("catsaccount", "change", account.pk))
    assert page.status_code == 200
    data = page_data(page)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return client.post(cats_url("catsaccount", "change", account.pk), data)

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db.models import QuerySet

from .extensions import sequence_labels
from .models import Contact, Enrollment, Membership, Sequence, Team
from .scoping import scope_for
from .services import (
    CONTACT_FIELDS,
    MSG_ONLY_OWNERS_GRANT_OWNER,
    email_validate,
    membership_change_check,
    teammate_add_check,
)
from .text import text_clean

MSG_ONE_TEAM = "Choose contacts of a single team."
MSG_TEAM_MISMATCH = "{label} must belong to the team “{team}”."
MSG_PASSWORD_AGAIN = "Type the password again: it is never sent back to the page."


def _teams_of_value(value: Any) -> set[int]:
    if isinstance(value, Team):
        return {value.pk}
    team_id = getattr(value, "team_id", None)
    if team_id is not None:
        return {team_id}
    if isinstance(value, Enrollment):
        return {value.sequence.team_id}
    return set()


class EmailSignInForm(AdminAuthenticationForm):
    """The admin's sign-in form: a person's username is their email, so it says "Email" (the
    field still posts `username`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Email"

    def get_invalid_login_error(self):
        return ValidationError(
            self.error_messages["invalid_login"], code="invalid_login", params={"username": "email"}
        )


class TeamConsistentForm(forms.ModelForm):
    """Refuses a row whose related objects come from different teams."""

    def clean(self):
        cleaned = super().clean()
        team = cleaned.get("team") or getattr(self.instance, "team", None)
        team_id = team.pk if isinstance(team, Team) else None
        for name, value in cleaned.items():
            if name == "team" or value is None:
                continue
            values = value if isinstance(value, QuerySet | list | tuple) else [value]
            for item in values:
                teams = _teams_of_value(item)
                if not teams:
                    continue
                if team_id is None:
                    team_id = next(iter(teams))
                    team = Team.objects.get(pk=team_id)
                elif team_id not in teams:
                    label = self.fields[name].label if name in self.fields else name
                    self.add_error(
                        name if name in self.fields else None,
                        MSG_TEAM_MISMATCH.format(label=label, team=team),
                    )
                    break
        return cleaned


class _StoredText:
    """A form field whose text is stored: `text_clean` runs before the field's own parsing, so
    a control character gets the same message on every field (MSG_CONTROL_CHARACTER)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # text_clean names NUL like any other control character.
        self.validators = [
            v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)
        ]

    def to_python(self, value):
        if isinstance(value, str):
            value = text_clean(value)
        return super().to_python(value)


class StoredCharField(_StoredText, forms.CharField):
    pass


class StoredEmailField(_StoredText, forms.EmailField):
    pass


class StoredURLField(_StoredText, forms.URLField):
    pass


class ContactForm(TeamConsistentForm):
    class Meta:
        model = Contact
        fields = ["team", "owner", "email", *CONTACT_FIELDS]
        field_classes = {
            "email": StoredEmailField,
            **{name: StoredCharField for name in CONTACT_FIELDS},
            "linkedin_url": StoredURLField,
        }

    def clean_email(self) -> str:
        return email_validate(self.cleaned_data.get("email", ""))


class TeammateAddForm(forms.ModelForm):
    """Adding a teammate: a new staff user, or an existing account linked unchanged.

    Validation only reads (services.teammate_add_check); the admin's save_model writes
    through services.teammate_add.
    """

    email = forms.EmailField()
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Only for a new account. Leave blank for single sign-on only; someone "
        "who already has an account keeps signing in as they do.",
    )

    class Meta:
        model = Membership
        fields = ["team", "email", "first_name", "last_name", "role", "password"]

    def __init__(self, *args, request=None, **kwargs):
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_password(self) -> str:
        password = self.cleaned_data.get("password") or ""
        if password:
            validate_password(password)
        return password

    def full_clean(self):
        super().full_clean()
        # The page comes back with what was typed, but never the password: say so (unless the
        # password itself was refused, which says what to type instead).
        password_typed = bool(self.data.get(self.add_prefix("password")))
        if self._errors and password_typed and "password" not in self._errors:
            self.add_error("password", MSG_PASSWORD_AGAIN)

    def clean(self):
        cleaned = super().clean()
        team, email, role = cleaned.get("team"), cleaned.get("email"), cleaned.get("role")
        user = self.request.user if self.request is not None else None
        if team and role == Membership.Role.OWNER and user is not None:
            owns = user.is_superuser or team.pk in scope_for(self.request).owned_team_ids
            if not owns:
                self.add_error("role", MSG_ONLY_OWNERS_GRANT_OWNER)
        if team and email:
            try:
                teammate_add_check(
                    team=team,
                    email=email,
                    password=cleaned.get("password") or "",
                    added_by=user,
                )
            except ValidationError as exc:
                self.add_error(None, exc)
        return cleaned

    def save(self, commit=True):
        # The admin's save_model calls services.teammate_add; nothing is saved here.
        self.save_m2m = lambda: None
        return self.instance


class MembershipChangeForm(TeamConsistentForm):
    class Meta:
        model = Membership
        fields = ["role", "integration"]

    def __init__(self, *args, request=None, **kwargs):
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_role(self) -> str:
        role = self.cleaned_data["role"]
        if self.instance.pk:
            membership_change_check(
                membership=self.instance,
                role=role,
                changed_by=self.request.user if self.request is not None else None,
            )
        return role

    def save(self, commit=True):
        # The admin's save_model calls services.membership_role_change.
        self.save_m2m = lambda: None
        return self.instance


class SequenceChoiceField(forms.ModelChoiceField):
    """A sequence reads as its title, its owner, and what integrations say of it (their sync,
    say: see extensions.extend_sequence_labels)."""

    def label_from_instance(self, sequence: Sequence) -> str:
        owner = sequence.owner.user
        who = owner.get_full_name() or owner.email
        return " · ".join([sequence.title, f"owner: {who}", *sequence_labels(sequence)])


class SequenceChoiceForm(forms.Form):
    """The intermediate page of the add/remove-from-sequence actions: nothing is chosen until
    the person chooses."""

    sequence = SequenceChoiceField(
        queryset=Sequence.objects.none(), empty_label="— choose a sequence —"
    )

    def __init__(self, *args, sequences=None, **kwargs):
        super().__init__(*args, **kwargs)
        if sequences is not None:
            self.fields["sequence"].queryset = sequences

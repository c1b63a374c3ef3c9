from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from .admin_base import TeamConsistentForm
from .models import Contact, Membership, Sequence, Team
from .scoping import scope_for
from .services import MSG_TEAMMATE_EXISTS, email_validate

MSG_ONLY_OWNERS_GRANT_OWNER = "Only a team owner can make someone an owner."
MSG_ONE_TEAM = "Choose contacts of a single team."


def check_role_grant(*, scope, team: Team, role: str, previous: str | None = None) -> None:
    """Managers run the team day to day; only owners hand out or take away ownership."""
    touches_owner = Membership.Role.OWNER in (role, previous)
    if touches_owner and not (scope.is_superuser or team.pk in scope.owned_team_ids):
        raise ValidationError(MSG_ONLY_OWNERS_GRANT_OWNER, code="owner")


class ContactForm(TeamConsistentForm):
    class Meta:
        model = Contact
        fields = "__all__"

    def clean_email(self) -> str:
        return email_validate(self.cleaned_data.get("email", ""))


class TeammateAddForm(forms.ModelForm):
    """Adding a teammate creates (or reuses) a staff user; see services.teammate_add."""

    email = forms.EmailField()
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Optional. Leave blank for single sign-on only.",
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
            from django.contrib.auth.password_validation import validate_password

            validate_password(password)
        return password

    def clean(self):
        cleaned = super().clean()
        team, email, role = cleaned.get("team"), cleaned.get("email"), cleaned.get("role")
        if team and role and self.request is not None:
            try:
                check_role_grant(scope=scope_for(self.request), team=team, role=role)
            except ValidationError as exc:
                self.add_error(None, exc)
        if (
            team
            and email
            and Membership.objects.filter(team=team, user__email__iexact=email.strip()).exists()
        ):
            self.add_error("email", MSG_TEAMMATE_EXISTS.format(email=email, team=team))
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
        if self.request is not None and self.instance.pk:
            previous = Membership.objects.get(pk=self.instance.pk).role
            check_role_grant(
                scope=scope_for(self.request),
                team=self.instance.team,
                role=role,
                previous=previous,
            )
        return role


class SequenceChoiceForm(forms.Form):
    """The intermediate page of the add/remove-from-sequence actions."""

    sequence = forms.ModelChoiceField(queryset=Sequence.objects.none(), empty_label=None)

    def __init__(self, *args, sequences=None, **kwargs):
        super().__init__(*args, **kwargs)
        if sequences is not None:
            self.fields["sequence"].queryset = sequences

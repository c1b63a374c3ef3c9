"""What the domain's services tell a person when they refuse (tests assert on these)."""

from __future__ import annotations

MSG_EMAIL_INVALID = "'{email}' is not a valid email address."
MSG_EMAIL_REQUIRED = "An email address is required."
MSG_OWNER_OTHER_TEAM = "The owner must be a member of the contact's team."
MSG_SEQUENCE_OTHER_TEAM = "The sequence belongs to another team."
MSG_SEQUENCE_ARCHIVED = "The sequence “{sequence}” is archived: unarchive it to add contacts."
MSG_ALREADY_IN_SEQUENCE = "{contact} is already in the sequence “{sequence}”."
MSG_NOT_IN_SEQUENCE = "{email} is not in the sequence “{sequence}”."
MSG_SENTIMENT_NOT_REPLY = "A sentiment can only be given for a reply."
MSG_TEAMMATE_EXISTS = "{email} is already a member of {team}."
MSG_TEAMMATE_AMBIGUOUS = (
    "More than one account uses {email}. Ask an administrator to add this person."
)
MSG_TEAMMATE_PROTECTED = (
    "{email} is an administrator account. Only an administrator can add it to a team."
)
MSG_TEAMMATE_INACTIVE = (
    "The account of {email} is deactivated or has no staff access. Ask an administrator."
)
MSG_TEAMMATE_OTHER_TEAM = (
    "{email} already belongs to another team you do not manage. Ask an owner or manager of "
    "that team, or an administrator, to add them here."
)
MSG_TEAMMATE_PASSWORD = (
    "{email} already has an account: leave the password blank. They keep signing in as they "
    "do today; a password can only be set for a new account."
)
MSG_ONLY_OWNERS_GRANT_OWNER = "Only a team owner can make, change or remove an owner."
MSG_LAST_OWNER = (
    "This is the last owner of {team}: make another teammate an owner first. A team always "
    "keeps at least one owner."
)

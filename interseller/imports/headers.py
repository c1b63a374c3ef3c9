"""Matching a sheet's headers to contact fields, forgivingly (“E-mail address” is the email)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .messages import (
    MSG_NO_EMAIL_COLUMN,
    ImportRefused,
)

NAME = "name"  # a single "Name" column, split into first and last name
FIELD_LABELS = {
    "email": "email",
    "first_name": "first name",
    "last_name": "last name",
    NAME: "first and last name",
    "company": "company",
    "title": "job title",
    "phone": "phone",
    "linkedin_url": "LinkedIn URL",
    "location": "location",
    "source": "source",
}
# Header text with case, spaces and punctuation removed → field.
HEADER_SYNONYMS: dict[str, str] = {
    **dict.fromkeys(
        [
            "email",
            "emailaddress",
            "mail",
            "emailid",
            "email1",
            "primaryemail",
            "workemail",
            "businessemail",
            "contactemail",
            "personalemail",
            "emails",
        ],
        "email",
    ),
    **dict.fromkeys(
        ["firstname", "first", "givenname", "forename", "fname", "prenom"], "first_name"
    ),
    **dict.fromkeys(["lastname", "last", "surname", "familyname", "lname", "nom"], "last_name"),
    **dict.fromkeys(
        ["name", "fullname", "contactname", "candidatename", "displayname", "candidate"], NAME
    ),
    **dict.fromkeys(
        [
            "company",
            "companyname",
            "currentcompany",
            "employer",
            "currentemployer",
            "organization",
            "organisation",
            "account",
            "accountname",
        ],
        "company",
    ),
    **dict.fromkeys(
        [
            "jobtitle",
            "title",
            "position",
            "currenttitle",
            "currentposition",
            "currentjobtitle",
            "role",
            "occupation",
        ],
        "title",
    ),
    **dict.fromkeys(
        [
            "phone",
            "phonenumber",
            "mobile",
            "mobilephone",
            "mobilenumber",
            "cell",
            "cellphone",
            "telephone",
            "tel",
            "workphone",
            "phone1",
            "directphone",
        ],
        "phone",
    ),
    **dict.fromkeys(
        [
            "linkedin",
            "linkedinurl",
            "linkedinprofile",
            "linkedinprofileurl",
            "profileurl",
            "publicprofileurl",
            "linkedinpublicurl",
            "linkedinlink",
        ],
        "linkedin_url",
    ),
    **dict.fromkeys(
        ["location", "city", "currentlocation", "region", "geo", "address"], "location"
    ),
    **dict.fromkeys(["source", "leadsource", "sourcedfrom"], "source"),
}


def header_key(header: str) -> str:
    return re.sub(r"[^0-9a-z]", "", header.casefold())


@dataclass
class Columns:
    index: dict[str, int]  # field → column index
    recognised: list[tuple[str, str]]  # (header as in the file, what it fills)
    ignored: list[str]

    def header_of(self, headers: list[str], name: str) -> str:
        return headers[self.index[name]] if name in self.index else FIELD_LABELS[name]


def columns_match(headers: list[str]) -> Columns:
    index: dict[str, int] = {}
    recognised: list[tuple[str, str]] = []
    ignored: list[str] = []
    for i, header in enumerate(headers):
        name = HEADER_SYNONYMS.get(header_key(header))
        if name is None or name in index:
            if header:
                ignored.append(header)
            continue
        index[name] = i
        recognised.append((header, FIELD_LABELS[name]))
    if "email" not in index:
        shown = ", ".join(f"“{h}”" for h in headers if h) or "none"
        raise ImportRefused(MSG_NO_EMAIL_COLUMN.format(columns=shown))
    return Columns(index=index, recognised=recognised, ignored=ignored)

"""A demo team to click through: members, a group, sequences, contacts, enrollments, events.

Safe to run again: everything is looked up before it is made, contacts and events go through
the services (so integrations hear about them) and replay as no-ops.
"""

from __future__ import annotations

import os
import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from interseller import services
from interseller.models import ApiToken, EmailEvent, Enrollment, Group, Membership, Sequence, Team

TEAM_NAME = "Demo Recruiting"
DEMO_PASSWORD = "demo-recruiting-2024"
ADMIN_EMAIL = "admin@demo.example"
TOKEN_NAME = "Demo outreach engine"
CONTACT_COUNT = 50
SEED = 20240501

PEOPLE = [
    ("owner@demo.example", "Olivia", "Owens", Membership.Role.OWNER),
    ("manager@demo.example", "Marcus", "Reyes", Membership.Role.MANAGER),
    ("priya@demo.example", "Priya", "Natarajan", Membership.Role.MEMBER),
    ("tom@demo.example", "Tom", "Becker", Membership.Role.MEMBER),
]
GROUP_NAME = "Engineering hiring"
SEQUENCES = [
    ("Senior backend engineers – Berlin", "owner@demo.example"),
    ("Product designers – remote", "priya@demo.example"),
    ("Data engineers – London", "tom@demo.example"),
]

FIRST_NAMES = [
    "Amelia", "Noah", "Sofia", "Liam", "Mia", "Lucas", "Hannah", "Mateo", "Leila", "Jonas",
    "Chloe", "Ravi", "Elena", "Kenji", "Fatima", "Oscar", "Ines", "David", "Zoe", "Tariq",
    "Nora", "Felix", "Aisha", "Hugo", "Maya",
]  # fmt: skip
LAST_NAMES = [
    "Schmidt", "Okafor", "Rossi", "Kowalski", "Nguyen", "Hernández", "Lindqvist", "Dubois",
    "Patel", "Yamamoto", "O'Brien", "Novak", "Silva", "Haddad", "Jensen", "Moreau", "Fischer",
    "Kim", "Costa", "Ivanova",
]  # fmt: skip
COMPANIES = [
    ("Northwind Analytics", "northwind.example"),
    ("Bluefin Payments", "bluefin.example"),
    ("Tessellate Health", "tessellate.example"),
    ("Orbital Logistics", "orbital.example"),
    ("Quillstone Media", "quillstone.example"),
    ("Helix Robotics", "helix.example"),
    ("Lumen Energy", "lumen.example"),
]
TITLES = [
    "Senior Software Engineer", "Staff Engineer", "Backend Developer", "Data Engineer",
    "Product Designer", "Engineering Manager", "Platform Engineer", "Analytics Engineer",
]  # fmt: skip
LOCATIONS = ["Berlin", "London", "Lisbon", "Amsterdam", "Warsaw", "Remote (EU)", "Dublin"]
SOURCES = ["LinkedIn", "GitHub", "Referral", "Conference", "Job board"]


class Command(BaseCommand):
    help = "Create (or complete) the 'Demo Recruiting' team with sample data. Safe to rerun."

    def add_arguments(self, parser):
        parser.add_argument(
            "--new-token",
            action="store_true",
            help="Create another API token for the demo team and print it.",
        )
        # `make run` serves on WEB_PORT (and passes --base-url too).
        port = os.environ.get("WEB_PORT") or "8000"
        parser.add_argument(
            "--base-url", default=f"http://localhost:{port}", help="Where the site is served."
        )

    def handle(self, *args, new_token: bool = False, base_url: str = "", **options):
        with transaction.atomic():
            team = Team.objects.filter(name__iexact=TEAM_NAME).first() or Team.objects.create(
                name=TEAM_NAME
            )
            members = self._members(team)
            self._admin()
            group, _ = Group.objects.get_or_create(team=team, name=GROUP_NAME)
            group.members.add(members["manager@demo.example"], members["priya@demo.example"])
            sequences = [
                Sequence.objects.get_or_create(
                    team=team, title=title, defaults={"owner": members[owner]}
                )[0]
                for title, owner in SEQUENCES
            ]
            counts = self._contacts_and_events(team, members, sequences)
            raw_token = self._token(team, members["owner@demo.example"], new_token)

        self.stdout.write(self.style.SUCCESS(f"Demo team “{team.name}” is ready."))
        self.stdout.write(
            f"  {counts['contacts_created']} contacts, {counts['enrollments_created']} "
            f"enrollments and {counts['events_created']} email events created this run."
        )
        self.stdout.write(f"\nSign in at {base_url.rstrip('/')}/admin/")
        self.stdout.write(f"  Team owner (staff):  owner@demo.example / {DEMO_PASSWORD}")
        self.stdout.write(f"  Superuser:           {ADMIN_EMAIL} / {DEMO_PASSWORD}")
        self.stdout.write("  (passwords are set only when the accounts are first created)")
        if raw_token:
            self.stdout.write(f"\nAPI token for {team.name} (shown only now, store it):")
            self.stdout.write(f"  {raw_token}")
        else:
            self.stdout.write(
                f"\nThe API token “{TOKEN_NAME}” already exists; only its digest is stored, so "
                "it cannot be shown again. Run `manage.py seed_demo --new-token` (or add one in "
                "the admin) to make a new one."
            )

    def _members(self, team: Team) -> dict[str, Membership]:
        members = {}
        for email, first, last, role in PEOPLE:
            membership = Membership.objects.filter(team=team, user__email__iexact=email).first()
            if membership is None:
                # An account that already exists is linked as it is: never given a password.
                exists = get_user_model().objects.filter(email__iexact=email).exists()
                membership = services.teammate_add(
                    team=team,
                    email=email,
                    first_name=first,
                    last_name=last,
                    role=role,
                    password=None if exists else DEMO_PASSWORD,
                )
            members[email] = membership
        return members

    def _admin(self) -> None:
        User = get_user_model()
        if not User.objects.filter(username=ADMIN_EMAIL).exists():
            User.objects.create_superuser(
                username=ADMIN_EMAIL, email=ADMIN_EMAIL, password=DEMO_PASSWORD
            )

    def _contacts_and_events(
        self, team: Team, members: dict[str, Membership], sequences: list[Sequence]
    ) -> dict[str, int]:
        rng = random.Random(SEED)
        counts = {"contacts_created": 0, "enrollments_created": 0, "events_created": 0}
        # A fixed anchor would age the demo; events replay by id, so dates only matter once.
        start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=21)
        owners = list(members.values())
        for i in range(CONTACT_COUNT):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            company, domain = rng.choice(COMPANIES)
            local = f"{first}.{last}".lower().replace("'", "").replace("á", "a")
            fields = {
                "first_name": first,
                "last_name": last,
                "company": company,
                "title": rng.choice(TITLES),
                "phone": f"+44 20 7946 {rng.randrange(10000):04d}",
                "linkedin_url": f"https://www.linkedin.com/in/{local.replace('.', '-')}-{i}",
                "location": rng.choice(LOCATIONS),
                "source": rng.choice(SOURCES),
            }
            upserted = services.contact_upsert(
                team=team,
                owner=owners[i % len(owners)],
                email=f"{local}{i}@{domain}",
                fields=fields,
            )
            counts["contacts_created"] += upserted.created
            # Most contacts are in one sequence, every seventh in two, a few in none yet.
            picks = [] if i % 10 == 9 else [sequences[i % 3]]
            if i % 7 == 0:
                picks.append(sequences[(i + 1) % 3])
            for sequence in picks:
                added = services.contact_add_to_sequence(
                    contact=upserted.contact, sequence=sequence, added_by=sequence.owner
                )
                counts["enrollments_created"] += added.created
                counts["events_created"] += self._events(added.enrollment, i, start, rng)
        return counts

    def _events(self, enrollment: Enrollment, i: int, start, rng: random.Random) -> int:
        """Up to three messages, then maybe a reply, a bounce or an unsubscribe."""
        prefix = f"demo-{enrollment.sequence_id}-{enrollment.contact_id}"
        sent_at = start + timedelta(days=i % 5, hours=rng.randrange(8, 17))
        steps = 1 + rng.randrange(3)
        plan = [
            (f"{prefix}-m{n}", EmailEvent.Kind.MESSAGE_SENT, sent_at + timedelta(days=3 * n), "")
            for n in range(steps)
        ]
        last = sent_at + timedelta(days=3 * (steps - 1))
        outcome = rng.random()
        if outcome < 0.25:
            sentiment = rng.choice(
                [Enrollment.Sentiment.INTERESTED, Enrollment.Sentiment.NOT_INTERESTED]
            )
            reply = (f"{prefix}-r", EmailEvent.Kind.REPLY_RECEIVED, last + timedelta(hours=5))
            plan.append((*reply, sentiment))
        elif outcome < 0.30:
            plan = plan[:1] + [(f"{prefix}-b", EmailEvent.Kind.BOUNCED, sent_at, "")]
        elif outcome < 0.34:
            plan.append((f"{prefix}-u", EmailEvent.Kind.UNSUBSCRIBED, last + timedelta(days=1), ""))
        created = 0
        for external_id, kind, when, sentiment in plan:
            result = services.email_event_record(
                enrollment=enrollment,
                external_id=external_id,
                kind=kind,
                occurred_at=when,
                subject=f"{enrollment.sequence.title.split(' –')[0]} at our client",
                snippet=REPLIES[sentiment] if kind == EmailEvent.Kind.REPLY_RECEIVED else "",
                sentiment=sentiment,
            )
            created += result.created
        return created

    def _token(self, team: Team, owner: Membership, new_token: bool) -> str | None:
        exists = ApiToken.objects.filter(team=team, revoked_at__isnull=True).exists()
        if exists and not new_token:
            return None
        name = TOKEN_NAME if not exists else f"{TOKEN_NAME} ({timezone.now():%Y-%m-%d %H:%M})"
        _, raw = services.api_token_create(team=team, name=name, created_by=owner.user)
        return raw


REPLIES = {
    Enrollment.Sentiment.INTERESTED: "Thanks for reaching out, happy to chat next week.",
    Enrollment.Sentiment.NOT_INTERESTED: "Not looking right now, but thanks.",
    Enrollment.Sentiment.NONE: "Can you share the salary range?",
}

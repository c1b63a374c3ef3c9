from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from cats_sync import sandbox, sandbox_seed


class Command(BaseCommand):
    help = "Run the CATS API v3 sandbox (in memory, optionally saved to a JSON snapshot)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument(
            "--rate-limit",
            default="500/3600",
            help="Requests per API key per rolling window, as COUNT/SECONDS.",
        )
        parser.add_argument("--snapshot", default=None, help="JSON file to load and save state.")
        parser.add_argument("--no-demo", action="store_true", help="Do not seed the demo site.")
        parser.add_argument("--verbose-requests", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            rate_limit = sandbox.parse_rate_limit(options["rate_limit"])
        except ValueError as exc:
            raise CommandError("--rate-limit must look like 500/3600") from exc
        server = sandbox.serve(
            options["host"],
            options["port"],
            rate_limit=rate_limit,
            snapshot_path=options["snapshot"],
            quiet=not options["verbose_requests"],
        )
        app = server.app
        if not options["no_demo"]:
            # A snapshot may already hold the demo site; seeding it twice would clash.
            demo = app.has_site(sandbox_seed.DEMO_SEED["subdomain"])
            if demo is None:
                demo = app.create_site(sandbox_seed.demo_seed())
            self.stdout.write(
                f"Demo site: subdomain={demo['subdomain']} api_key={demo['api_keys'][0]}"
            )
        self.stdout.write(f"CATS_API_URL={server.url}")
        self.stdout.write(f"Control surface: {server.root_url}/_sandbox/")
        self.stdout.write(f"Rate limit: {rate_limit[0]} requests / {rate_limit[1]} s per key")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server.server_close()
            app._save_snapshot()

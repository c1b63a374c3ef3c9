from django.core.management.base import BaseCommand, CommandError

from cats_sync import crypto
from cats_sync.models import CatsAccount


class Command(BaseCommand):
    help = "Re-encrypt every stored CATS API key under the first key of CATS_ENCRYPTION_KEYS."

    def handle(self, *args, **options) -> None:
        rotated, failed = 0, []
        for account in CatsAccount.objects.exclude(api_key_encrypted=""):
            try:
                token = crypto.rotate(account.api_key_encrypted)
            except crypto.KeyDecryptionError:
                failed.append(str(account))
                continue
            CatsAccount.objects.filter(pk=account.pk).update(api_key_encrypted=token)
            rotated += 1
        self.stdout.write(f"Re-encrypted {rotated} CATS API key(s).")
        if failed:
            raise CommandError(
                f"{len(failed)} key(s) could not be decrypted with any configured key: "
                + "; ".join(failed)
            )

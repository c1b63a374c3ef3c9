"""What tests share, in one place.

- `sandbox`: the CATS sandbox over real HTTP (a pytest plugin: `cats_sandbox` fixtures), and
  `Api` for raw requests as one API key.
- `cats`: set-up for CATS sync tests (connect a member, add contacts, record events, read the
  sandbox's snapshot) and for CatsClient tests.
- `admin`: the Django admin as a browser posts it (URLs, change-form data, errors, actions).
- `api`: the events API's URLs and a valid event body.
- `domain`: the outreach domain (signals received, the text-rule message).
- `spreadsheets`: files to import (CSV, XLSX, hand-written workbooks) and the import/export
  pages.
- `browser`: the admin in headless Chromium (Playwright): signing in, list actions, messages,
  and full-page screenshots under artifacts/screenshots/ (fixtures in tests/browser/conftest.py).
- `recordings`: CATS answers recorded from the API notes (tests/cats_sync/contract/responses),
  replayed to CatsClient, and the shape comparison with what the sandbox answers.
"""

from pathlib import Path

# The repository: where manage.py and `python -m cats_sandbox` run from.
ROOT = Path(__file__).resolve().parents[2]

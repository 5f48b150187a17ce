"""Make ``foreign_password_hashes.json``: hashes made by the real Django, Werkzeug and bcrypt.

Run once in a throwaway virtualenv with ``pip install django bcrypt argon2-cffi werkzeug``
(none of them is a dependency of sessionware's tests), then commit the JSON:
``python tests/vectors/make_password_vectors.py > tests/vectors/foreign_password_hashes.json``.
"""

from __future__ import annotations

import json
from importlib.metadata import version

import bcrypt
from django.conf import settings

settings.configure(
    PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.BCryptPasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
    ]
)
from django.contrib.auth.hashers import make_password  # noqa: E402 - after configure()
from werkzeug.security import generate_password_hash  # noqa: E402

PASSWORDS = ["correct horse battery", "pässwörd ﬁ", "x" * 100]
DJANGO = ["pbkdf2_sha256", "pbkdf2_sha1", "scrypt", "bcrypt_sha256", "bcrypt", "argon2"]
WERKZEUG = [
    "pbkdf2:sha256",
    "pbkdf2:sha256:600000",
    "pbkdf2:sha512:1000",
    "scrypt",
    "scrypt:16384:8:1",
]


def main() -> None:
    out = []
    for pw in PASSWORDS:
        for h in DJANGO:
            if h == "bcrypt" and len(pw.encode()) > 72:
                continue  # bcrypt 5 refuses what older versions silently cut
            out.append(
                {
                    "framework": f"django {version('django')}",
                    "hasher": h,
                    "password": pw,
                    "hash": make_password(pw, hasher=h),
                }
            )
    for pw in PASSWORDS:
        for m in WERKZEUG:
            out.append(
                {
                    "framework": f"werkzeug {version('werkzeug')}",
                    "hasher": m,
                    "password": pw,
                    "hash": generate_password_hash(pw, m),
                }
            )
    for pw in PASSWORDS:
        made = bcrypt.hashpw(pw.encode()[:72], bcrypt.gensalt(10)).decode()
        out.append(
            {
                "framework": f"bcrypt {version('bcrypt')} (hashpw of the first 72 bytes, as "
                "bcrypt < 4.1 did)",
                "hasher": "bcrypt",
                "password": pw,
                "hash": made,
            }
        )
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()

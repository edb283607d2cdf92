"""The password rule: at least 12 characters and not easy to guess, judged by zxcvbn.

zxcvbn estimates how many guesses a password takes (dictionaries, repeats, sequences, keyboard patterns, dates)
and scores it 0–4; 3 or more is accepted. The person's own name, e-mail and company count as known words, so
"KariNordmannKari" is weak for Kari Nordmann. Its feedback is English, so the user is told the rule in our words.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import lazy_gettext as _l
from zxcvbn import zxcvbn

from services.errors import DomainError

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 200
MIN_STRENGTH_SCORE = 3
# zxcvbn's running time grows with length; beyond this only the start is judged (it is long enough anyway).
_JUDGED_LENGTH = 100

PASSWORD_RULE = _l(
    "At least %(min)s characters and hard to guess: a sentence of four or five ordinary words is a good password.",
    min=MIN_PASSWORD_LENGTH,
)


def _words(user_inputs: Iterable[str | None]) -> list[str]:
    words: list[str] = []
    for value in user_inputs:
        if not value:
            continue
        value = str(value).strip().lower()
        words.append(value)
        words.extend(part for part in value.replace("@", " ").replace(".", " ").replace("-", " ").split() if part)
    return words


def password_inputs(user) -> list[str | None]:
    """What a password must not be built from: the user's name, e-mail and company."""
    person = user.person
    return [person.first_name, person.last_name, person.email, person.client.name if person.client else None]


def _score(password: str, words: list[str]) -> int:
    return zxcvbn(password[:_JUDGED_LENGTH], user_inputs=words)["score"] if password else 0


def _without(password: str, words: list[str]) -> str:
    """The password with the person's own words taken out: what is left must be strong on its own.

    zxcvbn scores "KariNordmannKari" 3 for Kari Nordmann; without the name nothing is left.
    """
    rest = password.lower()
    for word in sorted(words, key=len, reverse=True):
        if len(word) >= 3:
            rest = rest.replace(word, "")
    return password if rest == password.lower() else rest


def check_password(password: str | None, user_inputs: Iterable[str | None] = ()) -> None:
    """Raise DomainError with a Norwegian explanation when ``password`` breaks the rule; nothing when it holds."""
    password = password or ""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(_l("The password must be at least %(min)s characters.", min=MIN_PASSWORD_LENGTH))
    if len(password) > MAX_PASSWORD_LENGTH:
        raise DomainError(_l("The password can be at most %(max)s characters.", max=MAX_PASSWORD_LENGTH))
    words = _words(user_inputs)
    if _score(password, words) < MIN_STRENGTH_SCORE or _score(_without(password, words), words) < MIN_STRENGTH_SCORE:
        raise DomainError(
            _l(
                "The password is too easy to guess. Avoid common passwords, repeated characters or words, "
                "sequences such as 12345 or qwerty, and your own name, e-mail or company. "
                "A sentence of four or five ordinary words is a good password."
            )
        )

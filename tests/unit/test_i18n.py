import asyncio
from datetime import date

import pytest

from app.i18n import fmt_date, get_locale, gettext, money, pick_locale, use_locale

TAKEN = "This time was just taken. Please choose another slot."


@pytest.mark.parametrize(
    ("explicit", "telegram", "accept", "expected"),
    [
        ("kk", "en", "ru", "kk"),  # the saved choice wins
        (None, "en", "kk", "en"),  # then Telegram's language
        (None, "de", "kk-KZ,ru;q=0.8", "kk"),  # an unsupported Telegram language is skipped
        (None, None, "de-DE,en;q=0.7,ru;q=0.9", "ru"),  # quality order, not position
        (None, None, "fr, de", "ru"),  # nothing we speak → ru
        (None, None, "en;q=0", "ru"),  # q=0 means "not this"
        (None, None, "en;q=abc", "ru"),
        (None, None, None, "ru"),
    ],
)
def test_locale_negotiation(explicit, telegram, accept, expected) -> None:  # type: ignore[no-untyped-def]
    assert pick_locale(explicit, telegram, accept) == expected


def test_money_is_tenge_in_every_language() -> None:
    assert money(500000, locale="ru") == "5\xa0000\xa0₸"
    assert money(500000, locale="en") == "5,000\xa0₸"
    assert money(12345, locale="kk") == "123,45\xa0₸"


def test_dates_use_the_locale() -> None:
    day = date(2026, 12, 1)
    assert fmt_date(day, "EEEE, d MMMM", locale="ru") == "вторник, 1 декабря"
    assert fmt_date(day, "EEEE, d MMMM", locale="kk") == "сейсенбі, 1 желтоқсан"
    assert fmt_date(day, "EEEE, d MMMM", locale="en") == "Tuesday, 1 December"


async def test_concurrent_requests_keep_their_own_language() -> None:
    """The ContextVar keeps each task's locale even while others switch theirs."""

    async def speak(locale: str) -> list[str]:
        seen = []
        with use_locale(locale):
            for _ in range(20):
                await asyncio.sleep(0)
                seen.append(gettext(TAKEN))
        return seen

    ru, kk, en = await asyncio.gather(speak("ru"), speak("kk"), speak("en"))
    assert set(ru) == {"Это время только что заняли. Выберите другое."}
    assert set(kk) == {"Бұл уақытты жаңа ғана біреу алып қойды. Басқа уақытты таңдаңыз."}
    assert set(en) == {TAKEN}
    assert get_locale() == "ru"

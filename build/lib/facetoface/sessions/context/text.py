"""The context's words: Tavus's language for a profile's code, and user text made safe to quote
(see the package docstring's "User text is data, not instructions" and "Caps")."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

# --------------------------------------------------------------------------------------------
# Language
# --------------------------------------------------------------------------------------------

#: ISO 639-1 code → Tavus full language name (the 42 languages of Tavus's language-support
#: page, https://docs.tavus.io/sections/conversational-video-interface/language-support).
TAVUS_LANGUAGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "en": "english",
        "fr": "french",
        "de": "german",
        "es": "spanish",
        "pt": "portuguese",
        "zh": "chinese",
        "ja": "japanese",
        "hi": "hindi",
        "it": "italian",
        "ko": "korean",
        "nl": "dutch",
        "pl": "polish",
        "ru": "russian",
        "sv": "swedish",
        "tr": "turkish",
        "tl": "tagalog",
        "bg": "bulgarian",
        "ro": "romanian",
        "ar": "arabic",
        "cs": "czech",
        "el": "greek",
        "fi": "finnish",
        "hr": "croatian",
        "ms": "malay",
        "sk": "slovak",
        "da": "danish",
        "ta": "tamil",
        "uk": "ukrainian",
        "hu": "hungarian",
        "no": "norwegian",
        "vi": "vietnamese",
        "bn": "bengali",
        "th": "thai",
        "he": "hebrew",
        "ka": "georgian",
        "id": "indonesian",
        "te": "telugu",
        "gu": "gujarati",
        "kn": "kannada",
        "ml": "malayalam",
        "mr": "marathi",
        "pa": "punjabi",
    }
)

# Other spellings of the same languages: legacy ISO codes, Norwegian written standards,
# the ISO 639-2 code of Filipino.
_LANGUAGE_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {"iw": "he", "in": "id", "nb": "no", "nn": "no", "fil": "tl"}
)
_CODE_BY_NAME: Final[Mapping[str, str]] = MappingProxyType(
    {name: code for code, name in TAVUS_LANGUAGES.items()}
)
FALLBACK_LANGUAGE: Final = "english"


def resolve_language(code: str | None) -> str | None:
    """The ISO 639-1 code Tavus supports for a profile value, or None if unknown."""
    if code is None:
        return None
    norm = code.strip().lower().replace("_", "-")
    if norm in _CODE_BY_NAME:  # already a full name such as "Portuguese"
        return _CODE_BY_NAME[norm]
    primary = norm.split("-", 1)[0]
    primary = _LANGUAGE_ALIASES.get(primary, primary)
    return primary if primary in TAVUS_LANGUAGES else None


def tavus_language(code: str | None) -> tuple[str, bool]:
    """Map a profile language code to Tavus's full language name.

    Case-insensitive; region forms (``pt-BR``, ``en_US``) use their primary subtag; a full
    name (``"French"``) is accepted as is. Returns ``(name, fallback)``: unknown or missing
    codes give ``("english", True)``.
    """
    resolved = resolve_language(code)
    if resolved is None:
        return FALLBACK_LANGUAGE, True
    return TAVUS_LANGUAGES[resolved], False


# --------------------------------------------------------------------------------------------
# Sanitising user text
# --------------------------------------------------------------------------------------------

QUOTE_OPEN: Final = "«"
QUOTE_CLOSE: Final = "»"
ELLIPSIS: Final = "…"
_STRIPPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co"})
# Our delimiters and characters a reader (or a model) could take for them.
_DELIMITER_LOOKALIKES: Final = str.maketrans(
    {
        "«": '"',
        "»": '"',
        "‹": "'",
        "›": "'",
        "≪": '"',
        "≫": '"',
        "⟪": '"',
        "⟫": '"',
        "《": '"',
        "》": '"',
    }
)


def _cap(text: str, max_chars: int) -> str:
    """Cap already-clean single-line text at ``max_chars``, ending in ``…`` when cut."""
    if len(text) <= max_chars:
        return text
    room = max_chars - len(ELLIPSIS)
    head = text[:room]
    if text[room] != " ":
        boundary = head.rfind(" ")
        # Use the word boundary only if it keeps at least two thirds of the room.
        if boundary > 0 and 3 * boundary >= 2 * room:
            head = head[:boundary]
    head = head.rstrip(" ,;:-–—") or head.rstrip()
    return head + ELLIPSIS


def sanitize_user_text(value: str, *, max_chars: int) -> str:
    """Make user-written text safe to embed in the mentor context.

    Whitespace (line breaks and tabs included) becomes a space; other control, format
    (zero-width, bidi overrides, tag characters), surrogate and private-use characters are
    removed; the result is NFC-normalised, whitespace runs collapse to one space, and the ends
    are trimmed. The context's quote delimiters ``«`` ``»`` and their look-alikes become plain
    quotes, so the text cannot close its own quote. Text longer than ``max_chars`` is cut (on a
    word boundary when one is near) and ends with ``…``; the result is never longer than
    ``max_chars``.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    if value.isascii() and value.isprintable():
        # Nothing to strip, normalise or translate (the common case, and the per-character
        # walk below is the costliest step of building a context).
        return _cap(" ".join(value.split()), max_chars)
    kept: list[str] = []
    for char in value:
        if char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) not in _STRIPPED_CATEGORIES:
            kept.append(char)
    text = unicodedata.normalize("NFC", "".join(kept)).translate(_DELIMITER_LOOKALIKES)
    return _cap(" ".join(text.split()), max_chars)


def quoted(value: str | None, max_chars: int) -> str | None:
    """Sanitised user text wrapped in the delimiters, or None if nothing is left."""
    if value is None:
        return None
    text = sanitize_user_text(value, max_chars=max_chars)
    return f"{QUOTE_OPEN}{text}{QUOTE_CLOSE}" if text else None


def readable(value: str | None, labels: Mapping[str, str], max_chars: int) -> str | None:
    """A readable label for an enum-like value; unknown values are quoted as user data."""
    if value is None:
        return None
    known = labels.get(value.strip().lower())
    if known is not None:
        return known
    return quoted(value.replace("_", " "), max_chars)

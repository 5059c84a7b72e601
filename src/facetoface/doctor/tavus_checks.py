"""Checks against Tavus (or the simulator): the key, the default mentor, and a test-mode create
that goes through the whole create path without a room or a bill."""

from __future__ import annotations

from dataclasses import dataclass

from facetoface.config import Settings
from facetoface.doctor.report import Check, CheckResult
from facetoface.tavus import (
    ConversationProperties,
    CreateConversationRequest,
    Persona,
    TavusAuthError,
    TavusClient,
    TavusConcurrencyLimit,
    TavusError,
    TavusInvalidRequest,
    TavusNotFound,
    TavusOutcomeUnknown,
    TavusOutOfCredits,
    TavusStatus,
    TavusUnavailable,
)
from facetoface.tavus.mentor_tools import inspect as inspect_tools

KEY = Check("tavus_key", "Tavus API key")
PERSONA = Check("default_persona", "default persona")
REPLICA = Check("default_replica", "default replica")
CREATE = Check("test_mode_create", "test-mode create")
MENTOR_TOOLS = Check("mentor_tools", "mentor's tools")

_KEY_FIX = (
    "set TAVUS_API_KEY to a current key from the Tavus Developer Portal (a key with an IP "
    "allowlist works only from the listed addresses)"
)
_STATUS_FIX = "retry; if it persists, check https://status.tavus.io"


def target(settings: Settings) -> str:
    """Who answers: the built-in simulator or Tavus, and where."""
    who = "the Tavus simulator" if settings.uses_simulator else "Tavus"
    return f"{who} at {settings.effective_tavus_base_url}"


def _answer(exc: TavusError) -> str:
    status = f"HTTP {exc.status_code}" if exc.status_code is not None else "no answer"
    return f"{status}: {exc.message}"


def _unreachable_fix(settings: Settings) -> str:
    if settings.uses_simulator:
        return (
            "start `facetoface serve` (it runs the simulator on TAVUS_SIM_PORT), or set "
            "TAVUS_API_KEY to use Tavus"
        )
    return "check TAVUS_BASE_URL and outbound HTTPS from this host; https://status.tavus.io"


def _failure(which: Check, settings: Settings, exc: TavusError, what: str) -> CheckResult:
    """A Tavus error that is not the check's own finding: say what happened, and what to do."""
    if isinstance(exc, TavusAuthError):
        return which.failed(f"{what}: refused ({_answer(exc)})", _KEY_FIX)
    if isinstance(exc, TavusUnavailable | TavusOutcomeUnknown):
        return which.failed(f"{what}: no answer ({exc.message})", _unreachable_fix(settings))
    return which.failed(f"{what}: {_answer(exc)}", _STATUS_FIX)


@dataclass(slots=True)
class TavusState:
    """What the Tavus checks learned, for the checks that depend on them."""

    key_ok: bool = False
    persona: Persona | None = None
    mentor_ok: bool = False
    """The default persona and replica exist (and the replica is ready)."""
    persona_ok: bool = False


def unusable_key(settings: Settings) -> CheckResult | None:
    """The key check's failure when there is no key worth sending, else None."""
    key = settings.tavus_api_key
    if key is None and not settings.uses_simulator:
        return KEY.failed(
            "TAVUS_API_KEY is not set (the built-in simulator is for development)", _KEY_FIX
        )
    value = settings.effective_tavus_api_key
    if not value or value != value.strip():
        return KEY.failed(
            "TAVUS_API_KEY is empty or has surrounding whitespace or a line break",
            "set TAVUS_API_KEY to the key alone",
        )
    return None


def build_client(settings: Settings) -> TavusClient:
    """A client with the service's timeouts, one attempt per call (a doctor reports what it
    sees), and no metrics."""
    return TavusClient(
        settings.effective_tavus_base_url,
        settings.effective_tavus_api_key,
        connect_timeout_s=settings.tavus_connect_timeout_seconds,
        read_timeout_s=settings.tavus_read_timeout_seconds,
        total_timeout_s=settings.tavus_total_timeout_seconds,
        max_concurrency=2,
        retry_attempts=1,
        retry_timeout_s=settings.tavus_total_timeout_seconds,
    )


async def check_key(settings: Settings, tavus: TavusClient, state: TavusState) -> CheckResult:
    """A cheap authenticated read proves the key."""
    where = target(settings)
    try:
        await tavus.verify_api_key()
    except TavusAuthError as exc:
        return KEY.failed(f"{where} refused the key ({_answer(exc)})", _KEY_FIX)
    except TavusError as exc:
        return _failure(KEY, settings, exc, where)
    state.key_ok = True
    return KEY.passed(f"accepted by {where}")


async def check_persona(settings: Settings, tavus: TavusClient, state: TavusState) -> CheckResult:
    """The default persona exists at Tavus."""
    persona_id = settings.default_persona_id
    if not state.key_ok:
        return PERSONA.skipped("needs a working Tavus key")
    if not persona_id:
        if settings.default_replica_id:
            state.persona_ok = True
            return PERSONA.not_applicable(
                "not set: Tavus's default persona goes with the default replica",
            )
        return PERSONA.failed(
            "no default mentor: TAVUS_DEFAULT_PAL_ID and TAVUS_DEFAULT_FACE_ID are unset",
            "set TAVUS_DEFAULT_PAL_ID and/or TAVUS_DEFAULT_FACE_ID (users without a "
            "mentor of their own get it)",
        )
    try:
        persona = await tavus.get_persona(persona_id)
    except (TavusNotFound, TavusInvalidRequest):
        return PERSONA.failed(
            f"Tavus has no persona {persona_id}",
            "set TAVUS_DEFAULT_PAL_ID to one of this account's PALs (personas) "
            "(GET /v2/pals lists them)",
        )
    except TavusError as exc:
        return _failure(PERSONA, settings, exc, f"reading persona {persona_id}")
    state.persona = persona
    state.persona_ok = True
    model = persona.perception_model
    perception = (
        f"perception {model}"
        if persona.analyses_perception
        else "no Raven perception model (no visual analysis after calls)"
    )
    name = f" «{persona.persona_name}»" if persona.persona_name else ""
    return PERSONA.passed(f"{persona_id}{name} exists, {perception}")


async def check_replica(settings: Settings, tavus: TavusClient, state: TavusState) -> CheckResult:
    """The replica conversations get (configured, or the persona's default) exists and is
    trained."""
    if not state.key_ok:
        return REPLICA.skipped("needs a working Tavus key")
    replica_id = settings.default_replica_id
    source = ""
    if not replica_id:
        if state.persona is None:
            return REPLICA.skipped("needs the default persona")
        replica_id = state.persona.default_replica_id
        source = " (the persona's default)"
        if not replica_id:
            return REPLICA.failed(
                f"persona {state.persona.persona_id} has no default replica and "
                "TAVUS_DEFAULT_FACE_ID is not set",
                "set TAVUS_DEFAULT_FACE_ID",
            )
    try:
        replica = await tavus.get_replica(replica_id)
    except (TavusNotFound, TavusInvalidRequest):
        return REPLICA.failed(
            f"Tavus has no replica {replica_id}{source}",
            "set TAVUS_DEFAULT_FACE_ID to one of this account's Faces (replicas) "
            "(GET /v2/faces lists them)",
        )
    except TavusError as exc:
        return _failure(REPLICA, settings, exc, f"reading replica {replica_id}")
    name = f" «{replica.replica_name}»" if replica.replica_name else ""
    if not replica.is_ready:
        progress = f", training {replica.training_progress}" if replica.training_progress else ""
        return REPLICA.failed(
            f"{replica_id}{name}{source} is not ready (status {replica.status}{progress})",
            "wait until its training completes, or choose a ready replica",
        )
    state.mentor_ok = state.persona_ok
    return REPLICA.passed(f"{replica_id}{name}{source} exists and is ready")


def _test_request(settings: Settings) -> CreateConversationRequest:
    """A create as the service sends it, in test mode."""
    return CreateConversationRequest(
        persona_id=settings.default_persona_id,
        replica_id=settings.default_replica_id,
        callback_url=f"{settings.public_base_url}/v1/callbacks/tavus/doctor",
        conversation_name=f"{settings.deployment_name}:doctor",
        conversational_context=(
            "facetoface doctor: a test-mode conversation that checks the create path. "
            "Nobody will join."
        ),
        custom_greeting=settings.session_custom_greeting or None,
        test_mode=True,
        properties=ConversationProperties(
            max_call_duration=settings.session_max_call_duration_seconds,
            participant_left_timeout=settings.session_participant_left_timeout_seconds,
            participant_absent_timeout=settings.session_participant_absent_timeout_seconds,
            language="english",
            enable_recording=settings.session_enable_recording or None,
            enable_closed_captions=settings.session_enable_closed_captions,
        ),
    )


async def check_test_mode_create(
    settings: Settings, tavus: TavusClient, state: TavusState
) -> CheckResult:
    """A `test_mode` create exercises the whole create path: nothing billed, no room."""
    if not state.key_ok:
        return CREATE.skipped("needs a working Tavus key")
    if not state.mentor_ok:
        return CREATE.skipped("needs the default persona and replica")
    try:
        conversation = await tavus.create_conversation(_test_request(settings))
    except TavusOutOfCredits as exc:
        return CREATE.failed(
            f"refused: out of credits ({_answer(exc)})",
            "top up the Tavus account's conversational credits",
        )
    except TavusConcurrencyLimit as exc:
        return CREATE.failed(
            f"refused: concurrency limit ({_answer(exc)}), though test mode holds no slot",
            _STATUS_FIX,
        )
    except (TavusInvalidRequest, TavusNotFound) as exc:
        return CREATE.failed(
            f"Tavus refused the create ({_answer(exc)})",
            "the message names the field: check TAVUS_DEFAULT_PAL_ID/FACE_ID and the "
            "SESSION_* settings",
        )
    except TavusError as exc:
        return _failure(CREATE, settings, exc, "create")
    if conversation.status != TavusStatus.ended:
        # Test mode was not honoured: this one is live and billing. Stop it now.
        try:
            await tavus.end_conversation(conversation.conversation_id)
        except TavusError:
            ended = "ending it failed: end it in the Tavus dashboard"
        else:
            ended = "it was ended at once"
        return CREATE.failed(
            f"{conversation.conversation_id} came back {conversation.status!r}, not 'ended': "
            f"test mode was not honoured ({ended})",
            "check that TAVUS_BASE_URL is Tavus's API (https://tavusapi.com/v2)",
        )
    try:
        # Hard: it was ours alone, and nothing about it is worth keeping.
        await tavus.delete_conversation(conversation.conversation_id, hard=True)
    except TavusError:
        cleanup = "; deleting it failed (harmless: it is ended)"
    else:
        cleanup = ""
    return CREATE.passed(
        f"created in test mode and answered 'ended' (nothing billed, no room){cleanup}",
    )


async def check_mentor_tools(
    settings: Settings, tavus: TavusClient, state: TavusState
) -> CheckResult:
    """The mentor's tools are registered at Tavus and attached to the default PAL."""
    if settings.tool_secret is None:
        return MENTOR_TOOLS.not_applicable("TAVUS_TOOL_SECRET is unset: the mentor's tools are off")
    if settings.uses_simulator:
        return MENTOR_TOOLS.not_applicable(
            "the built-in simulator: `serve` registers them there when it starts"
        )
    if not state.key_ok:
        return MENTOR_TOOLS.skipped("needs a working Tavus key")
    pal = settings.default_persona_id
    if not pal:
        return MENTOR_TOOLS.not_applicable("no default persona (PAL) to attach the tools to")
    try:
        found = await inspect_tools(tavus, settings.public_base_url, [pal])
    except TavusError as exc:
        return _failure(MENTOR_TOOLS, settings, exc, "reading the tools registry")
    if found.complete:
        return MENTOR_TOOLS.passed(f"{len(found.registered)} tools registered, attached to {pal}")
    missing = sorted({*found.missing, *found.stale, *found.unattached.get(pal, [])})
    return MENTOR_TOOLS.failed(
        f"not registered as this deployment's, or not attached to {pal}: {', '.join(missing)}",
        "run `facetoface tavus setup` (or `facetoface doctor --fix`)",
    )

"""The Exports API's data: seeded, deterministic conversations and messages that look like a real account."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .common import DAY_MS, HOUR_MS
from .common import phone as _phone
from .common import pick as _pick
from .common import randint as _randint
from .common import uuid4 as _uuid

# Names with diacritics, CJK, Cyrillic, emoji, quotes and a backslash, so encoding bugs show. (display, email slug)
_PEOPLE: tuple[tuple[str, str], ...] = (
    ("Zoë Ødegård", "zoe.odegard"),
    ("Jürgen Müller", "juergen.mueller"),
    ("Siobhán O'Connor", "siobhan.oconnor"),
    ('Ana-María "Ani" Pérez', "ana.perez"),
    ("山田 太郎", "taro.yamada"),
    ("Łukasz Żółć", "lukasz.zolc"),
    ("Nguyễn Văn An", "an.nguyen"),
    ("Ольга Ковалёва", "olga.kovaleva"),
    ("Aïcha Benali", "aicha.benali"),
    ("Chloé Dubois", "chloe.dubois"),
    ("Mia 🌸 Sato", "mia.sato"),
    ("Back\\slash Bob", "bob.backslash"),
    ("Søren Kierkegård", "soren.k"),
    ("John Smith", "john.smith"),
)
_AGENT_NAMES: tuple[tuple[str, str], ...] = (
    ("Freja Nørgaard", "freja"),
    ("Mads Østergaard", "mads"),
    ("Emma Johansson", "emma"),
    ("Lucas Martin", "lucas"),
    ("Sofía García", "sofia"),
    ("Kenji 佐藤", "kenji"),
    ('Noah "Support" Olsen', "noah"),
    ("Ida Lindqvist", "ida"),
)
# The en dashes here and below are deliberate non-ASCII punctuation.
_QUEUE_NAMES = ("Support", "Billing 💳", 'VIP "Gold"', "Nordics – Øresund", "東京 Support", "Returns\\Exchanges")  # noqa: RUF001
_TAG_NAMES = ("vip", "refund", "shipping", "bug", "billing", "churn-risk", "😀 feedback", "legacy-tag")
_CHANNELS = ("email", "widgetchat", "pstnphone", "facebookmessenger", "whatsapp", "sms", "contactform")
_CHANNEL_WEIGHTS = (35, 25, 15, 7, 6, 5, 7)
_PHONE_CHANNELS = frozenset({"pstnphone", "sms", "whatsapp"})
_STATUSES = ("closed", "open", "pending")
_STATUS_WEIGHTS = (72, 16, 12)
_COUNTRIES = ("DK", "SE", "NO", "DE", "GB", "JP", "US", None)
_LANGUAGES = ("en", "da", "de", "ja", "sv", None)
_SUBJECTS = (
    "Order #{n} hasn't arrived",
    'Refund for "damaged" item #{n}',
    "File C:\\Users\\zoë\\invoice-{n}.pdf won't open",
    "Two-line subject\nsecond line #{n}",
    "Levering til 東京 📦 #{n}",
    "Billing question 💳",
    "Fwd: Re: RE: address change",
    "Tab\tseparated\tsubject",
)
_RATING_MESSAGES = (
    "Great help, thanks! 👍",
    'He said "we\'ll call back" but never did',
    "Line one\nLine two\n",
    "Attached C:\\temp\\log.txt as asked",
    "Très bien, merci",
    "とても良いサポートでした",
    "",
)
_WRAPUP_NOTES = (
    'Customer asked for a refund.\nApproved by "Team Lead".',
    "Logs in \\\\fileserver\\share\\case",
    "Escalated to tier 2 🚨",
    "Kunden ønskede opkald i morgen kl. 10",
)
_MESSAGE_TEXTS = (
    "Hi, my order #{n} hasn't arrived yet 📦",
    "Hej! Jeg har et spørgsmål om min faktura.",
    'Quote: "it\'s broken"\nPath: C:\\Users\\zoë\\Desktop',
    "<p>HTML body &amp; entities &lt;b&gt;</p>",
    "Thanks, that solved it 🙏",
    "ご対応ありがとうございます。",
    "Could you call me back on +45 12 34 56 78?",
    "",
)
_CHAT_MENU = ("Track my order", "Returns & refunds", "Talk to a human 🙋")
# (identifier, data_type, archived, kind): kind "text"/"select" give a string value, "multi" a list of strings.
_CUSTOM_ATTRIBUTES: tuple[tuple[str, str, bool, str], ...] = (
    ("order_number", "Text", False, "text"),
    ("product_category", "Select", False, "select"),
    ("affected_products", "MultiSelect", False, "multi"),
    ("legacy_reference", "Text", True, "text"),
)
_SELECT_OPTIONS = ("Shoes", "Bags", "Accessories", "Gift cards 🎁", "Ørestad outlet")


@dataclass(frozen=True)
class Pools:
    """Account-level entities (agents, queues, tags, ...) shared by all conversations."""

    agents: tuple[tuple[str, str, str, str | None], ...]  # id, name, email, phone
    queues: tuple[tuple[str, str], ...]
    tags: tuple[tuple[str, str, bool], ...]  # id, name, is_deactivated
    attributes: tuple[tuple[str, str, str, bool, str], ...]  # attribute_id, identifier, data_type, archived, kind
    widgets: tuple[tuple[str, str], ...]
    email_integrations: tuple[tuple[str, str, str], ...]  # id, sender name, forwarding email
    facebook_pages: tuple[tuple[str, str], ...]
    numbers: tuple[tuple[str, str], ...]  # provisioned phone number id, name

    @classmethod
    def build(cls, rng: random.Random) -> Pools:
        return cls(
            agents=tuple(
                (_uuid(rng), name, f"{slug}@support.acme.example", _phone(rng) if rng.random() < 0.6 else None)
                for name, slug in _AGENT_NAMES
            ),
            queues=tuple((_uuid(rng), name) for name in _QUEUE_NAMES),
            tags=tuple((_uuid(rng), name, name == "legacy-tag") for name in _TAG_NAMES),
            attributes=tuple((_uuid(rng), *attribute) for attribute in _CUSTOM_ATTRIBUTES),
            widgets=((_uuid(rng), "Main site widget"), (_uuid(rng), "Help centre – FAQ")),  # noqa: RUF001
            email_integrations=(
                (_uuid(rng), "Acme Support", "support@acme.example"),
                (_uuid(rng), "Acme Kundeservice Ø", "kundeservice@acme.example"),
            ),
            facebook_pages=(("104567890123456", "Acme Café"), ("209876543210987", "Acme 東京")),
            numbers=((_uuid(rng), "Main line +45 70 70 70 70"), (_uuid(rng), "Sverige växel")),
        )


class Generator:
    """Builds one conversation and its messages from a random stream. Pure apart from the rng it is given."""

    def __init__(self, pools: Pools, messages_per_conversation: float) -> None:
        self.pools = pools
        # Message counts are uniform on 0..2m (floor of U[0, 2m+1)), so their mean is m.
        self._message_scale = 2.0 * max(0.0, messages_per_conversation) + 1.0

    def message_count(self, rng: random.Random) -> int:
        return int(rng.random() * self._message_scale)

    @staticmethod
    def lifetime_ms(rng: random.Random) -> int:
        # Most conversations live minutes to hours; a tail stays open or is reopened for days or weeks.
        draw = rng.random()
        if draw < 0.6:
            return _randint(rng, 0, 8 * HOUR_MS)
        if draw < 0.9:
            return _randint(rng, 0, 5 * DAY_MS)
        return _randint(rng, 0, 30 * DAY_MS)

    def conversation(
        self,
        rng: random.Random,
        conversation_id: int,
        created_ms: int,
        updated_ms: int,
        n_messages: int,
        pin_last_message: bool,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """One conversation with `created_ms <= every timestamp <= updated_ms` (except a scheduled rating)."""
        pools = self.pools
        span_ms = updated_ms - created_ms

        def at(fraction: float) -> int:
            return created_ms + int(span_ms * fraction)

        n = conversation_id
        channel = rng.choices(_CHANNELS, _CHANNEL_WEIGHTS)[0]
        is_phone = channel in _PHONE_CHANNELS
        direction = "outbound" if rng.random() < 0.12 else "inbound"
        status = rng.choices(_STATUSES, _STATUS_WEIGHTS)[0]
        name, slug = _pick(rng, _PEOPLE)
        requester = (_uuid(rng), name, f"{slug}{_randint(rng, 1, 999)}@example.com")
        queue = _pick(rng, pools.queues) if rng.random() < 0.85 else None
        queued_ms = at(rng.random() * 0.05) if direction == "inbound" and queue is not None else None
        agent = _pick(rng, pools.agents) if status == "closed" or rng.random() < 0.6 else None
        assigned_ms = at(0.05 + rng.random() * 0.2) if agent is not None else None
        if status == "closed":
            closed_ms: int | None = updated_ms if rng.random() < 0.5 else at(0.8 + rng.random() * 0.2)
        else:
            closed_ms = None
        anonymized_ms = updated_ms if rng.random() < 0.02 else None
        transferred = is_phone and agent is not None and rng.random() < 0.15
        transferee = _pick(rng, pools.agents) if transferred else None

        ratings, rating_score, rating_message = self._ratings(rng, closed_ms, updated_ms)
        tag_rows = rng.sample(pools.tags, _pick(rng, (0, 0, 1, 1, 2, 3)))
        number = _pick(rng, pools.numbers) if is_phone else None
        email_integration = _pick(rng, pools.email_integrations) if channel == "email" else None
        page = _pick(rng, pools.facebook_pages) if channel == "facebookmessenger" else None
        widget = _pick(rng, pools.widgets) if channel in ("widgetchat", "contactform") else None
        if status == "closed" and closed_ms is not None:
            total_s: int | None = _randint(rng, 30, 3600) if is_phone else (closed_ms - created_ms) // 1000
            handling_s: int | None = min(total_s, _randint(rng, 10, 1800)) if total_s is not None else None
        else:
            total_s = handling_s = None
        subject = None
        if channel in ("email", "contactform") or rng.random() < 0.1:
            subject = _pick(rng, _SUBJECTS).format(n=_randint(rng, 10_000, 99_999))

        messages, last_message_ms = self._messages(
            rng,
            conversation_id,
            channel,
            direction,
            created_ms,
            updated_ms,
            n_messages,
            pin_last_message,
            requester,
            agent,
            subject is not None,
        )
        anonymized = anonymized_ms is not None
        record: dict[str, Any] = {
            "id": conversation_id,
            "created_at": created_ms,
            "queued_at": queued_ms,
            "closed_at": closed_ms,
            "assigned_at": assigned_ms,
            "updated_at": updated_ms,
            "last_message_created_at": last_message_ms,
            "anonymized_at": anonymized_ms,
            "transfer_time": at(0.3 + rng.random() * 0.3) if transferred else None,
            "initial_channel": channel,
            "requester_id": requester[0],
            "requester_name": None if anonymized else requester[1],
            "requester_email": None if anonymized else requester[2],
            "requester_phone_number": _phone(rng) if (is_phone or rng.random() < 0.1) and not anonymized else None,
            "requester_additional_emails": [f"alt{n}@example.org"] if rng.random() < 0.1 else [],
            "requester_additional_phone_numbers": [_phone(rng)] if rng.random() < 0.05 else [],
            "queue_id": queue[0] if queue else None,
            "queue_name": queue[1] if queue else None,
            "rating_score": rating_score,
            "rating_message": rating_message,
            "ratings": ratings,
            "direction": direction,
            "assignee_id": agent[0] if agent else None,
            "assignee_name": agent[1] if agent else None,
            "assignee_email": agent[2] if agent else None,
            "assignee_phone_number": agent[3] if agent else None,
            "to_provisioned_phone_number_id": number[0] if number and direction == "inbound" else None,
            "to_provisioned_phone_number_name": number[1] if number and direction == "inbound" else None,
            "from_provisioned_phone_number_id": number[0] if number and direction == "outbound" else None,
            "from_provisioned_phone_number_name": number[1] if number and direction == "outbound" else None,
            "total_duration": total_s,
            "handling_duration": handling_s,
            "dixa_email_integration_id": email_integration[0] if email_integration else None,
            "dixa_email_integration_sender_name": email_integration[1] if email_integration else None,
            "forwarding_email": email_integration[2] if email_integration else None,
            "facebook_page_id": page[0] if page else None,
            "facebook_page_name": page[1] if page else None,
            "widget_id": widget[0] if widget else None,
            "widget_name": widget[1] if widget else None,
            "tags": [tag[1] for tag in tag_rows],
            "tags_info": [{"id": tag[0], "name": tag[1], "is_deactivated": tag[2]} for tag in tag_rows],
            "conversation_wrapup_notes": (
                rng.sample(_WRAPUP_NOTES, _randint(rng, 1, 2)) if agent and rng.random() < 0.2 else []
            ),
            "transferee_name": transferee[1] if transferee else None,
            "transferee_number": (transferee[3] or _phone(rng)) if transferee else None,
            "originating_country": _pick(rng, _COUNTRIES),
            "status": status,
            "subject": subject,
            "custom_fields": self._custom_fields(rng, n),
            # Not in the documented schema: connectors must pass unknown fields through (additionalProperties).
            "emulator_extra_field": {"revision": 0, "shard": n % 7, "note": "undocumented field"},
        }
        return record, messages

    @staticmethod
    def _ratings(
        rng: random.Random, closed_ms: int | None, updated_ms: int
    ) -> tuple[list[dict[str, Any]], int | None, str | None]:
        if closed_ms is None or rng.random() >= 0.35:
            return [], None, None
        status = rng.choices(("Rated", "Offered", "Scheduled", "Cancelled"), (60, 20, 10, 10))[0]
        offered_ms = closed_ms + (updated_ms - closed_ms) // 2
        score = _randint(rng, 1, 5) if status == "Rated" else None
        message = _pick(rng, _RATING_MESSAGES) if status == "Rated" and rng.random() < 0.5 else None
        rating = {
            "rating_score": score,
            "rating_message": message,
            "rating_type": _pick(rng, ("CSAT", "stars")),
            "rating_status": status,
            "rating_language": _pick(rng, _LANGUAGES),
            "rating_created_timestamp": closed_ms,
            "rating_offered_timestamp": offered_ms if status in ("Rated", "Offered") else None,
            "rating_modified_timestamp": updated_ms if status in ("Rated", "Cancelled") else closed_ms,
            "rating_rated_timestamp": updated_ms if status == "Rated" else None,
            "rating_scheduled_timestamp": closed_ms,
            # A scheduled survey may be due after the conversation's last update.
            "rating_scheduled_for_timestamp": closed_ms + HOUR_MS if status == "Scheduled" else offered_ms,
            "rating_unscheduled_timestamp": None,
            "rating_cancelled_timestamp": updated_ms if status == "Cancelled" else None,
        }
        return [rating], score, message

    def _custom_fields(self, rng: random.Random, n: int) -> list[dict[str, Any]]:
        fields: list[dict[str, Any]] = []
        for attribute_id, identifier, data_type, archived, kind in rng.sample(
            self.pools.attributes, _pick(rng, (0, 1, 2, 3))
        ):
            value: str | list[str] | None
            if rng.random() < 0.15:
                value = None
            elif kind == "multi":
                value = rng.sample(_SELECT_OPTIONS, _randint(rng, 0, 3))
            elif kind == "select":
                value = _pick(rng, _SELECT_OPTIONS)
            else:
                value = f"ORD-{n}-ø" if identifier == "order_number" else f'ref "{n}"\\old'
            fields.append(
                {
                    "attribute_id": attribute_id,
                    "identifier": identifier,
                    "value": value,
                    "data_type": data_type,
                    "archived": archived,
                }
            )
        return fields

    def _messages(
        self,
        rng: random.Random,
        conversation_id: int,
        channel: str,
        direction: str,
        created_ms: int,
        updated_ms: int,
        count: int,
        pin_last_message: bool,
        requester: tuple[str, str, str],
        agent: tuple[str, str, str, str | None] | None,
        is_email_like: bool,
    ) -> tuple[list[dict[str, Any]], int | None]:
        if count <= 0:
            return [], None
        span_ms = updated_ms - created_ms
        # The first message opens the conversation; the rest fall anywhere up to and including updated_at.
        times = sorted([created_ms] + [created_ms + int(span_ms * rng.random()) for _ in range(count - 1)])
        if pin_last_message:
            times[-1] = updated_ms
        is_phone = channel in _PHONE_CHANNELS
        messages: list[dict[str, Any]] = []
        for index, created_at in enumerate(times):
            message_direction = direction if index == 0 else _pick(rng, ("inbound", "outbound"))
            automated = message_direction == "outbound" and rng.random() < 0.25
            if message_direction == "inbound":
                author_name, author_email = requester[1], requester[2]
            elif automated or agent is None:
                author_name, author_email = "Acme Bot 🤖", None
            else:
                author_name, author_email = agent[1], agent[2]
            is_email = channel == "email"
            voice = channel == "pstnphone"
            message: dict[str, Any] = {
                "id": _uuid(rng),
                "csid": conversation_id,
                "created_at": created_at,
                "initial_channel": channel,
                "author_name": author_name,
                "author_email": author_email,
                "direction": message_direction,
                "text": None if voice else _pick(rng, _MESSAGE_TEXTS).format(n=conversation_id),
                "from_phone_number": _phone(rng) if is_phone else None,
                "to_phone_number": _phone(rng) if is_phone else None,
                "duration": _randint(rng, 5, 1800) if voice else None,
                "recording_url": f"https://recordings.acme.example/{conversation_id}/{index}.mp3"
                if voice and rng.random() < 0.7
                else None,
                "voicemail_url": f"https://voicemail.acme.example/{conversation_id}.wav"
                if voice and rng.random() < 0.1
                else None,
                "to": [requester[2] if message_direction == "outbound" else "support@acme.example"] if is_email else [],
                "cc": [f"cc{conversation_id}@example.net"] if is_email and rng.random() < 0.15 else [],
                "bcc": ["audit@acme.example"] if is_email and rng.random() < 0.05 else [],
                "attached_files": [f"https://files.acme.example/{conversation_id}/faktura%20Zo%C3%AB.pdf"]
                if is_email_like and rng.random() < 0.2
                else [],
                "from": (author_email or "noreply@acme.example") if is_email else None,
                "is_automated_message": automated,
                "chat_input_question": None,
                "chat_input_answer": None,
                "chat_menu_text": None,
                "form_submission": None,
                # Not in the documented schema.
                "emulator_extra_field": {"sentiment": _pick(rng, ("positive", "neutral", "negative", None))},
            }
            if channel == "widgetchat" and index == 0 and rng.random() < 0.5:
                message["chat_input_question"] = "What can we help you with?"
                message["chat_input_answer"] = _pick(rng, _CHAT_MENU)
                message["chat_menu_text"] = " | ".join(_CHAT_MENU)
            if channel == "contactform" and index == 0:
                message["form_submission"] = {
                    "name": requester[1],
                    "email": requester[2],
                    "phone": _phone(rng) if rng.random() < 0.4 else None,
                }
            messages.append(message)
        return messages, times[-1]


def special_times(rng: random.Random, count: int, start_ms: int, end_ms: int) -> dict[int, int]:
    """Pick records to put exactly on day boundaries and on shared timestamps, so boundary bugs show.

    Returns {record index: updated_at}. The range start, when it is a day boundary, is always among them.
    """
    if count < 2:
        return {}
    first_day_ms = -(-start_ms // DAY_MS) * DAY_MS
    days = list(range(first_day_ms, end_ms, DAY_MS))
    n_boundary = min(6, max(1, count // 50)) if days else 0
    n_pairs = min(4, max(1, count // 100))
    tie_size = 3 if days and count >= 6 else 0
    wanted = min(count, n_boundary + tie_size + 2 * n_pairs)
    indices = rng.sample(range(count), wanted)
    pinned: dict[int, int] = {}
    cursor = 0
    if days:
        # The range start itself is a classic off-by-one trap, so it is always one of the boundary records.
        boundary_days = [days[0], *rng.sample(days, min(len(days), n_boundary - 1))] if n_boundary else []
        for day_ms in boundary_days:
            if cursor < wanted:
                pinned[indices[cursor]] = day_ms
                cursor += 1
        # Several records sharing one timestamp that is also a day boundary.
        tie_day_ms = _pick(rng, days)
        for _ in range(tie_size):
            if cursor < wanted:
                pinned[indices[cursor]] = tie_day_ms
                cursor += 1
    while cursor + 1 < wanted:
        shared_ms = rng.randrange(start_ms, end_ms)
        pinned[indices[cursor]] = shared_ms
        pinned[indices[cursor + 1]] = shared_ms
        cursor += 2
    return pinned
